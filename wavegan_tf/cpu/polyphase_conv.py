"""Strided 1-D convolutions whose three products can each run as matrix products (polyphase).

WaveGAN's convolutions have stride 4 and kernel 25 with 'same' padding; each of the three products
of a training step (forward, input gradient, kernel gradient) can run as TensorFlow's op or as
matmuls over frames of ``stride`` samples (:mod:`wavegan_tf.cpu.polyphase_products`).

On CPUs TensorFlow's convolution runs some WaveGAN shapes at a fraction of its matmul speed, and
which product is slow differs by shape and instruction set: :func:`layer_plan` picks, per layer,
which of the three run as matmuls (a :class:`Plan`), by rules per CPU kind measured with
``bench/conv_layers.py``, or by the plan measured on this machine
(:mod:`wavegan_tf.cpu.conv_tuning`; see the docs' performance page). GPUs and TPUs keep
TensorFlow's convolutions. In training the products are tied together with custom gradients that are
themselves these products, so every order of derivative (the gradient penalty takes a second
one) follows the plan, and the kernel gradient cuts its frames from the layer's input when it
needs them instead of keeping them from the forward pass.

:class:`PolyphaseConv1D` and :class:`PolyphaseConv1DTranspose` are ``keras.layers.Conv1D`` /
``Conv1DTranspose`` with exactly their weights, variable names and config; only the way the
products are computed differs, so checkpoints, exports and parameter counts are those of the
standard layers. :func:`conv_formulation` forces one formulation, e.g. to compare both.
"""

import collections
import contextlib

import keras
import tensorflow as tf
from wavegan_tf.cpu import bfloat16_support
from wavegan_tf.cpu.polyphase_products import (  # noqa: F401  (conv1d_transpose: public here)
    conv1d, conv1d_input_gradient, conv1d_kernel_gradient, conv1d_transpose, standard_conv1d,
    standard_input_gradient, standard_kernel_gradient)

FORMULATIONS = ("auto", "tuned", "standard", "polyphase")

Plan = collections.namedtuple("Plan", ["forward", "input_gradient", "kernel_gradient"])
Plan.__doc__ = """Which products of a strided convolution run as matmuls (True) rather than as
TensorFlow's convolution ops: ``forward`` (input to output), ``input_gradient`` (output to input:
D's backward pass, G's forward pass) and ``kernel_gradient``. Always in the terms of the forward
convolution, for G's transposed layers too (their input is its output)."""
STANDARD = Plan(False, False, False)
MATMUL = Plan(True, True, True)

# The rules' thresholds, from bench/conv_layers.py at d=64, batch 64 (README). A layer is
# "large" when its output steps x input channels x output channels reach LARGE_WORK (every layer
# at d=64 has 2^23, at d=16 2^19; at d=16 the matmuls did not pay).
LARGE_WORK = 2**22
# The most output steps of a large layer whose forward product / kernel gradient runs as matmuls,
# per CPU kind: on AVX-512 D's last three layers (forward 1.0-2.2x faster, kernel gradient
# 1.0-2.2x); on AVX2 the last one (1.5x) and, for the kernel gradient, the last two (1.2-1.8x).
FORWARD_MAX_STEPS = {"avx512": 256, "avx2": 16}
KERNEL_GRADIENT_MAX_STEPS = {"avx512": 256, "avx2": 64}
# On both, the input gradient of the last layer (1.0-1.9x) and of one-channel inputs (2.2-4x).
INPUT_GRADIENT_MAX_STEPS = 16

_state = {"formulation": "auto", "tuned": {}}


@contextlib.contextmanager
def conv_formulation(name):
    """Within the block, layers traced from now on use ``name``: "auto" (the measured rules),
    "tuned" (the plans measured on this machine, :func:`adopt_tuned_plans`; the rules for
    shapes without one), "standard" (TensorFlow's convolution) or "polyphase" (every product as
    a matmul)."""
    if name not in FORMULATIONS:
        raise ValueError(f"conv formulation must be one of {FORMULATIONS}, got {name!r}")
    previous = _state["formulation"]
    _state["formulation"] = name
    try:
        yield
    finally:
        _state["formulation"] = previous


def accelerator_present():
    """True when TensorFlow sees a GPU or TPU (where the convolutions stay TensorFlow's)."""
    return bool(tf.config.list_logical_devices("GPU") or tf.config.list_logical_devices("TPU"))


def cpu_kind():
    """"avx512" or "avx2" (an x86 CPU without AVX-512, or with oneDNN limited below it by
    ``ONEDNN_MAX_CPU_ISA``; see ``bfloat16_support.onednn_isa_limit``) on a machine whose only
    devices are CPUs; None with a GPU or TPU, or when the CPU's flags cannot be read (e.g. an
    ARM CPU, where the rule keeps TensorFlow's ops and only a tuned plan uses matmuls)."""
    if accelerator_present():
        return None
    try:
        with open(bfloat16_support.CPUINFO_PATH, encoding="utf-8", errors="replace") as f:
            flags = bfloat16_support.cpu_flags(f.read())
    except OSError:
        return None
    if not flags:
        return None
    return "avx512" if "avx512f" in flags and not _isa_limited_below_avx512() else "avx2"


def _isa_limited_below_avx512():
    limited = bfloat16_support.onednn_isa_limit()
    return bool(limited) and not limited[1].startswith(("AVX512", "AVX10"))


def rule_plan(kind, steps, in_channels, out_channels):
    """The measured rule's :class:`Plan` on a CPU of ``kind`` (see :func:`cpu_kind`; None:
    TensorFlow's ops everywhere) for a forward convolution from ``in_channels`` to ``steps`` x
    ``out_channels``."""
    if kind not in FORWARD_MAX_STEPS:
        return STANDARD
    large = steps * in_channels * out_channels >= LARGE_WORK
    return Plan(forward=large and steps <= FORWARD_MAX_STEPS[kind],
                input_gradient=in_channels == 1 or (large and steps <= INPUT_GRADIENT_MAX_STEPS),
                kernel_gradient=large and steps <= KERNEL_GRADIENT_MAX_STEPS[kind])


def adopt_tuned_plans(plans):
    """Adds ``{(batch, dtype name, steps, in channels, out channels, kernel length, stride):
    Plan}`` (see :mod:`wavegan_tf.cpu.conv_tuning`) to the plans of the "tuned" formulation."""
    _state["tuned"].update(plans)


def layer_plan(shape):
    """The :class:`Plan` of a layer under the current formulation; ``shape`` is ``(batch,
    dtype name, steps, in channels, out channels, kernel length, stride)`` in forward-
    convolution terms (``steps`` output steps: D's output or G's input)."""
    formulation = _state["formulation"]
    if formulation == "standard":
        return STANDARD
    if formulation == "polyphase":
        return MATMUL
    if formulation == "tuned" and tuple(shape) in _state["tuned"] and not accelerator_present():
        return _state["tuned"][tuple(shape)]
    return rule_plan(cpu_kind(), *shape[2:5])


def planned_shape(layer, batch, inputs_shape=None, dtype=None):
    """The planned shape (see :func:`layer_plan`) of a :class:`PolyphaseConv1D` or
    :class:`PolyphaseConv1DTranspose` layer at ``batch`` clips, from ``inputs_shape`` (default:
    the shape of its input in a functional model) and ``dtype`` (default: its compute dtype);
    None for other layers and settings the plans do not cover."""
    if not isinstance(layer, (PolyphaseConv1D, PolyphaseConv1DTranspose)):
        return None
    inputs_shape = tuple(layer.input.shape) if inputs_shape is None else tuple(inputs_shape)
    if not _plain(layer, inputs_shape):
        return None
    dtype = dtype or layer.compute_dtype
    stride, kernel_len = layer.strides[0], layer.kernel_size[0]
    if isinstance(layer, PolyphaseConv1DTranspose):
        if layer.output_padding is not None:
            return None
        return (batch, dtype, inputs_shape[1], layer.filters, inputs_shape[-1], kernel_len,
                stride)
    steps = -(-inputs_shape[1] // stride)
    return (batch, dtype, steps, inputs_shape[-1], layer.filters, kernel_len, stride)


def planned_conv1d(inputs, kernel, stride, plan):
    """A 'same' ``tf.nn.conv1d`` whose products (this one and, through custom gradients, its
    derivatives of every order) run as ``plan`` says."""
    length, kernel_len = inputs.shape[1], kernel.shape[0]

    @tf.custom_gradient
    def convolve(x, w):
        outputs = (conv1d if plan.forward else standard_conv1d)(x, w, stride)

        def gradient(grads):
            return (planned_input_gradient(grads, w, length, stride, plan),
                    planned_kernel_gradient(x, grads, kernel_len, stride, plan))
        return outputs, gradient

    return convolve(inputs, kernel)


def planned_input_gradient(grads, kernel, length, stride, plan):
    """The input gradient of a 'same' convolution of ``length`` samples (= the transposed
    convolution of ``grads``), its products run as ``plan`` says."""
    kernel_len = kernel.shape[0]

    @tf.custom_gradient
    def transpose(g, w):
        products = conv1d_input_gradient if plan.input_gradient else standard_input_gradient
        outputs = products(g, w, length, stride)

        def gradient(upstream):
            return (planned_conv1d(upstream, w, stride, plan),
                    planned_kernel_gradient(upstream, g, kernel_len, stride, plan))
        return outputs, gradient

    return transpose(grads, kernel)


def planned_kernel_gradient(inputs, grads, kernel_len, stride, plan):
    """The kernel gradient of a 'same' convolution of ``inputs`` with output gradient
    ``grads``, its products run as ``plan`` says."""
    length = inputs.shape[1]

    @tf.custom_gradient
    def correlate(x, g):
        products = conv1d_kernel_gradient if plan.kernel_gradient else standard_kernel_gradient
        outputs = products(x, g, kernel_len, stride)

        def gradient(upstream):
            return (planned_input_gradient(g, upstream, length, stride, plan),
                    planned_conv1d(x, upstream, stride, plan))
        return outputs, gradient

    return correlate(inputs, grads)


def _plain(layer, inputs_shape):
    """Whether a Keras conv layer's settings and input shape are the ones the planned products
    cover: strided, channels-last, 'same' padding, static length."""
    return (layer.data_format == "channels_last" and getattr(layer, "groups", 1) == 1
            and tuple(layer.dilation_rate) == (1,) and layer.strides[0] > 1
            and layer.padding == "same" and inputs_shape[1] is not None)


@keras.saving.register_keras_serializable(package="wavegan_tf")
class PolyphaseConv1D(keras.layers.Conv1D):
    """``keras.layers.Conv1D`` whose products run as :func:`layer_plan` says (strided,
    channels-last, 'same' padding, static length; other settings run as ``Conv1D``).

    In training the products are tied by :func:`planned_conv1d`'s custom gradients; otherwise
    (generation, exports) the forward product alone runs, as plain TensorFlow ops.
    """

    def call(self, inputs, training=None):
        shape = planned_shape(self, inputs.shape[0], inputs.shape, inputs.dtype.name)
        if shape is None:
            return super().call(inputs)
        plan = layer_plan(shape)
        if plan == STANDARD or not (training or plan.forward):
            return super().call(inputs)
        kernel, stride = tf.convert_to_tensor(self.kernel), self.strides[0]
        if training:
            return _finish(self, planned_conv1d(inputs, kernel, stride, plan))
        return _finish(self, conv1d(inputs, kernel, stride))


@keras.saving.register_keras_serializable(package="wavegan_tf")
class PolyphaseConv1DTranspose(keras.layers.Conv1DTranspose):
    """``keras.layers.Conv1DTranspose`` whose products run as :func:`layer_plan` says (strided,
    channels-last, 'same' padding, no output padding, static length). Its forward pass is the
    input gradient of the convolution with the same kernel; in training its products are tied
    by :func:`planned_input_gradient`'s custom gradients, otherwise that product alone runs."""

    def call(self, inputs, training=None):
        shape = planned_shape(self, inputs.shape[0], inputs.shape, inputs.dtype.name)
        if shape is None:
            return super().call(inputs)
        plan = layer_plan(shape)
        if plan == STANDARD or not (training or plan.input_gradient):
            return super().call(inputs)
        kernel, stride = tf.convert_to_tensor(self.kernel), self.strides[0]
        length = inputs.shape[1] * stride
        if training:
            return _finish(self, planned_input_gradient(inputs, kernel, length, stride, plan))
        return _finish(self, conv1d_input_gradient(inputs, kernel, length, stride))


def _finish(layer, outputs):
    """The bias and activation of a Keras conv layer, applied to its convolution's outputs."""
    if layer.use_bias:
        outputs = outputs + tf.reshape(layer.bias, [1, 1, layer.filters])
    if layer.activation is not None:
        outputs = layer.activation(outputs)
    return outputs
