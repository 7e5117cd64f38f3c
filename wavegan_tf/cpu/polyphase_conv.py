"""Strided 1-D convolutions whose three products can each run as matrix products (polyphase).

WaveGAN's convolutions have stride 4 and kernel 25 with 'same' padding. Cut the padded input into
frames of ``stride`` samples: output step ``t`` reads frames ``t .. t + Q - 1`` (``Q =
ceil(kernel / stride)``, 7 for WaveGAN), so the convolution is the sum over the ``Q`` frame
offsets of each offset's frames times its block of the kernel (zero-padded to ``Q * stride``
taps, 28). The other two products of a training step are matmuls too: the input gradient (the
forward pass of G's transposed convolutions) multiplies the output gradient by each transposed
block and adds the ``Q`` results back into place (overlap-add); the kernel gradient multiplies
each offset's frames, transposed, by the output gradient. All three give the values of
TensorFlow's ops up to float rounding. The offsets are taken one at a time, so no ``Q``-fold
copy of the input is made.

On CPUs TensorFlow's convolution runs some WaveGAN shapes at a fraction of its matmul speed, and
which product is slow differs by shape and instruction set: :func:`layer_plan` picks, per layer,
which of the three run as matmuls (a :class:`Plan`), by rules per CPU kind measured with
``bench/conv_layers.py`` (see the README's Performance section). GPUs and TPUs keep TensorFlow's
convolutions. In training the products are tied together with custom gradients that are
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
from tensorflow.python.ops import control_flow_util

from wavegan_tf.cpu import bfloat16_support

FORMULATIONS = ("auto", "standard", "polyphase")

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
# Frames of at most this many values (stride x channels) take the input gradient as one product.
NARROW_FRAME = 64

_state = {"formulation": "auto"}


@contextlib.contextmanager
def conv_formulation(name):
    """Within the block, layers traced from now on use ``name``: "auto" (the measured rules),
    "standard" (TensorFlow's convolution) or "polyphase" (every product as a matmul)."""
    if name not in FORMULATIONS:
        raise ValueError(f"conv formulation must be one of {FORMULATIONS}, got {name!r}")
    previous = _state["formulation"]
    _state["formulation"] = name
    try:
        yield
    finally:
        _state["formulation"] = previous


def cpu_kind():
    """"avx512" or "avx2" (an x86 CPU without AVX-512, or with oneDNN limited below it by
    ``ONEDNN_MAX_CPU_ISA``; see ``bfloat16_support.onednn_isa_limit``) on a machine whose only
    devices are CPUs; None with a GPU or TPU, or when the CPU's flags cannot be read."""
    if tf.config.list_logical_devices("GPU") or tf.config.list_logical_devices("TPU"):
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


def layer_plan(steps, in_channels, out_channels):
    """The :class:`Plan` of a layer under the current formulation (forward-convolution terms:
    ``steps`` output steps, D's output or G's input)."""
    formulation = _state["formulation"]
    if formulation == "standard":
        return STANDARD
    if formulation == "polyphase":
        return MATMUL
    return rule_plan(cpu_kind(), steps, in_channels, out_channels)


def _same_padding(length_in, length_out, kernel_len, stride):
    """Left padding of TensorFlow's 'same' convolution from ``length_in`` to ``length_out``."""
    return max((length_out - 1) * stride + kernel_len - length_in, 0) // 2


def _frames(kernel_len, stride):
    return -(-kernel_len // stride)


def _geometry(length, kernel_len, stride, padding):
    """(output steps, left padding) of a convolution of ``length`` samples."""
    if padding == "same":
        steps = -(-length // stride)
        return steps, _same_padding(length, steps, kernel_len, stride)
    return (length - kernel_len) // stride + 1, 0


def _padded_frames(inputs, kernel_len, stride, padding):
    """``[batch, steps + Q - 1, stride * channels]``: the padded input cut into frames of
    ``stride`` samples; output step ``t`` reads frames ``t .. t + Q - 1``."""
    length, channels = inputs.shape[1], inputs.shape[2]
    steps, left = _geometry(length, kernel_len, stride, padding)
    needed = (steps + _frames(kernel_len, stride) - 1) * stride
    x = tf.pad(inputs, [[0, 0], [left, max(needed - length - left, 0)], [0, 0]])[:, :needed]
    return tf.reshape(x, [-1, needed // stride, stride * channels])


def _frame_rows(frames, q, steps, after=None):
    """Frame ``t + q`` of every output step ``t``, as ``[batch * steps, stride * channels]``.

    The copy is made only once ``after`` exists: without that order TensorFlow may copy all
    ``Q`` offsets at once and hold ``Q`` copies of the input, which the per-offset products
    exist to avoid.
    """
    with tf.control_dependencies([] if after is None else [after]):
        return tf.reshape(frames[:, q:q + steps], [-1, frames.shape[2]])


def _kernel_blocks(kernel, stride):
    """The kernel ``[kernel_len, in, out]`` zero-padded to ``Q * stride`` taps, as ``Q`` blocks
    ``[Q, stride * in, out]``: block ``q`` multiplies frame ``t + q``. A copy of the whole
    kernel: only for narrow layers, whose kernels are small (see :func:`_kernel_block`)."""
    kernel_len, channels, filters = kernel.shape
    frames = _frames(kernel_len, stride)
    padded = tf.pad(kernel, [[0, frames * stride - kernel_len], [0, 0], [0, 0]])
    return tf.reshape(padded, [frames, stride * channels, filters])


def _kernel_block(kernel, stride, q, after):
    """Block ``q`` of :func:`_kernel_blocks` alone (taps ``q * stride`` onwards, the last one
    zero-padded), made only once ``after`` exists.

    A padded copy of the whole kernel would depend on the kernel only, so TensorFlow may make
    it long before the product that uses it (a gradient's, at the start of the forward pass) and
    hold it until then: at d=64 that was 56 MiB per copy for D's last layer.
    """
    with tf.control_dependencies([after]):
        taps = kernel[q * stride:(q + 1) * stride]
        if taps.shape[0] < stride:
            taps = tf.pad(taps, [[0, stride - taps.shape[0]], [0, 0], [0, 0]])
        return tf.reshape(taps, [stride * kernel.shape[1], kernel.shape[2]])


def conv1d(inputs, kernel, stride, padding="same"):
    """``tf.nn.conv1d(inputs, kernel, stride, padding.upper())`` as matmuls: the sum over the
    ``Q`` frame offsets of each offset's frames times its kernel block (one ``Q``-times-wider
    product over stacked frames gives the same, but holds ``Q`` copies of the input).

    ``inputs`` ``[batch, length, in_channels]`` (static length), ``kernel`` ``[kernel_len,
    in_channels, out_channels]``; ``padding`` is "same" or "valid".
    """
    steps, _ = _geometry(inputs.shape[1], kernel.shape[0], stride, padding)
    frames = _padded_frames(inputs, kernel.shape[0], stride, padding)
    total = None
    for q in range(_frames(kernel.shape[0], stride)):
        block = _kernel_block(kernel, stride, q, after=inputs if total is None else total)
        part = tf.matmul(_frame_rows(frames, q, steps, after=total), block)
        total = part if total is None else total + part
    return tf.reshape(total, [-1, steps, kernel.shape[2]])


def conv1d_input_gradient(grads, kernel, length, stride):
    """The input gradient of a 'same' ``tf.nn.conv1d`` of ``length`` samples whose output
    gradient is ``grads`` ``[batch, steps, out_channels]``: ``[batch, length, in_channels]``.

    Each frame offset's product of ``grads`` with its transposed kernel block gives the frames
    that offset touched; they are added back into place (overlap-add), one offset at a time.
    Where a frame is narrow (at most :data:`NARROW_FRAME` values, e.g. D's one-channel input)
    such products would run far below matmul speed, so one product gives all offsets at once.
    """
    kernel_len, channels, filters = kernel.shape
    frames = _frames(kernel_len, stride)
    steps, left = grads.shape[1], _same_padding(length, grads.shape[1], kernel_len, stride)
    rows = tf.reshape(grads, [-1, filters])
    if stride * channels <= NARROW_FRAME:
        matrix = tf.reshape(_kernel_blocks(kernel, stride), [frames * stride * channels, filters])
        stacked = tf.reshape(tf.matmul(rows, matrix, transpose_b=True),
                             [-1, steps, frames, stride * channels])
        offset_frames = lambda q, after: stacked[:, :, q]  # noqa: E731
    else:
        offset_frames = lambda q, after: tf.reshape(tf.matmul(  # noqa: E731
            rows, _kernel_block(kernel, stride, q, after), transpose_b=True),
            [-1, steps, stride * channels])
    total = None
    for q in range(frames):
        # One offset at a time (see _frame_rows): all at once would hold 2 Q input-sized copies.
        after = grads if total is None else total
        with tf.control_dependencies([after]):
            part = tf.pad(offset_frames(q, after), [[0, 0], [q, frames - 1 - q], [0, 0]])
        total = part if total is None else total + part
    samples = tf.reshape(total, [-1, (steps + frames - 1) * stride, channels])
    samples = tf.pad(samples, [[0, 0], [0, max(left + length - samples.shape[1], 0)], [0, 0]])
    return samples[:, left:left + length]


def conv1d_transpose(inputs, kernel, stride):
    """``tf.nn.conv1d_transpose`` with 'same' padding (output length ``length * stride``) as
    matmuls: the input gradient of the convolution with the same kernel
    (:func:`conv1d_input_gradient`). ``inputs`` ``[batch, length, in_channels]``, ``kernel``
    ``[kernel_len, out_channels, in_channels]`` (Keras' ``Conv1DTranspose`` layout)."""
    return conv1d_input_gradient(inputs, kernel, inputs.shape[1] * stride, stride)


def conv1d_kernel_gradient(inputs, grads, kernel_len, stride):
    """The kernel gradient ``[kernel_len, in_channels, out_channels]`` of a 'same'
    ``tf.nn.conv1d`` of ``inputs`` whose output gradient is ``grads``: one matmul per frame
    offset (each offset's frames, transposed, times ``grads``), giving ``stride`` taps each.

    The first block, padded to the whole kernel, holds the result, and each later block is
    written into it in place (``InplaceUpdate``) once the one before is: concatenating the
    blocks held all of them beside the result (106 MiB at once for D's last layer at d=64).
    XLA, which has no in-place update op and plans its own buffers, concatenates.
    """
    steps, filters = grads.shape[1], grads.shape[2]
    # The frames are cut once the output gradient exists: they depend on the forward input
    # only, and cut earlier (during the forward pass) they would be held until the backward
    # pass reaches this layer.
    with tf.control_dependencies([grads]):
        frames = _padded_frames(inputs, kernel_len, stride, "same")
    rows, channels = tf.reshape(grads, [-1, filters]), inputs.shape[2]
    in_place = not control_flow_util.GraphOrParentsInXlaContext(tf.compat.v1.get_default_graph())
    result, last, blocks = None, None, []
    for q in range(_frames(kernel_len, stride)):
        rows_q = _frame_rows(frames, q, steps, after=last)
        taps = min(stride, kernel_len - q * stride)
        # The last block's padding taps are dropped here, so no padded kernel is made.
        last = tf.matmul(rows_q, rows, transpose_a=True)[:taps * channels]
        if in_place:
            last = result = _write_rows(result, last, q * stride * channels, kernel_len * channels)
        else:
            blocks.append(last)
    return tf.reshape(result if in_place else tf.concat(blocks, 0), [kernel_len, channels, filters])


def _write_rows(result, block, start, rows):
    """``block`` written into rows ``start`` onwards of ``result``, in place (``InplaceUpdate``
    updates its input's buffer: ``result`` must have no other use); None: a new result of
    ``rows`` rows, ``block`` at ``start`` and zeros elsewhere."""
    if result is None:
        return tf.pad(block, [[start, rows - start - block.shape[0]], [0, 0]])
    return tf.raw_ops.InplaceUpdate(x=result, i=tf.range(start, start + block.shape[0]), v=block)


def standard_conv1d(inputs, kernel, stride):
    """A 'same' convolution as TensorFlow's op."""
    return tf.nn.conv1d(inputs, kernel, stride, "SAME")


def standard_input_gradient(grads, kernel, length, stride):
    """:func:`conv1d_input_gradient` as TensorFlow's op (its transposed convolution)."""
    shape = [tf.shape(grads)[0], length, kernel.shape[1]]
    return tf.nn.conv1d_transpose(grads, kernel, shape, stride, "SAME")


def standard_kernel_gradient(inputs, grads, kernel_len, stride):
    """:func:`conv1d_kernel_gradient` as TensorFlow's op (a 2-D one of height 1, as
    ``tf.nn.conv1d`` runs)."""
    sizes = [1, kernel_len, inputs.shape[2], grads.shape[2]]
    return tf.raw_ops.Conv2DBackpropFilter(input=inputs[:, None], filter_sizes=sizes,
                                           out_backprop=grads[:, None],
                                           strides=[1, 1, stride, 1], padding="SAME")[0]


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


def _plain(layer, inputs):
    """Whether a Keras conv layer's settings and input are the ones the planned products
    cover: strided, channels-last, 'same' padding, static length."""
    return (layer.data_format == "channels_last" and getattr(layer, "groups", 1) == 1
            and tuple(layer.dilation_rate) == (1,) and layer.strides[0] > 1
            and layer.padding == "same" and inputs.shape[1] is not None)


@keras.saving.register_keras_serializable(package="wavegan_tf")
class PolyphaseConv1D(keras.layers.Conv1D):
    """``keras.layers.Conv1D`` whose products run as :func:`layer_plan` says (strided,
    channels-last, 'same' padding, static length; other settings run as ``Conv1D``).

    In training the products are tied by :func:`planned_conv1d`'s custom gradients; otherwise
    (generation, exports) the forward product alone runs, as plain TensorFlow ops.
    """

    def call(self, inputs, training=None):
        if not _plain(self, inputs):
            return super().call(inputs)
        steps = -(-inputs.shape[1] // self.strides[0])
        plan = layer_plan(steps, inputs.shape[-1], self.filters)
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
        if not (_plain(self, inputs) and self.output_padding is None):
            return super().call(inputs)
        plan = layer_plan(inputs.shape[1], self.filters, inputs.shape[-1])
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
