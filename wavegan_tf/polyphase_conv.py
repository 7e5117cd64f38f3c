"""Strided 1-D convolutions that can run as one matrix product over stacked frames (polyphase).

WaveGAN's convolutions have stride 4 and kernel 25 with 'same' padding. Cut the padded input into
frames of ``stride`` samples: output step ``t`` reads frames ``t .. t + Q - 1`` (``Q =
ceil(kernel / stride)``, 7 for WaveGAN), so the whole convolution is one matrix product of those
``Q`` frames, stacked side by side, with the kernel zero-padded to ``Q * stride`` taps (28) and
flattened. The transposed convolution is the same product the other way: output frame ``f``
(``stride`` samples of every output channel) is the product of input steps ``f - Q + 1 .. f``,
stacked, with the kernel rearranged into one ``[Q * in_channels, stride * out_channels]`` matrix.
Both give the values of ``tf.nn.conv1d`` / ``tf.nn.conv1d_transpose`` up to float rounding, and
their gradients, to any order, are those of a pad, slices, a concatenation and a matmul.

On CPUs some shapes run several times faster this way than as TensorFlow's convolution (which
reaches only a fraction of the matmul speed at few time steps of many channels), others
slower (the stacked frames hold ``Q`` = 7 copies of the input). :func:`use_polyphase`
decides per layer shape by the rule measured in ``bench/conv_layers.py`` (see the README's
Performance section), on CPUs without AVX-512; those with it, GPUs and TPUs keep the standard
convolution.

:class:`PolyphaseConv1D` and :class:`PolyphaseConv1DTranspose` are ``keras.layers.Conv1D`` /
``Conv1DTranspose`` with exactly their weights, variable names and config; only the way the
product is computed differs, so checkpoints, exports and parameter counts are those of the
standard layers. :func:`conv_formulation` forces one formulation, e.g. to compare both.
"""

import contextlib

import keras
import tensorflow as tf

from wavegan_tf import bfloat16_support

FORMULATIONS = ("auto", "standard", "polyphase")
# Polyphase wins on CPU when a layer has few time steps and many channels (measured in
# bench/conv_layers.py, see the README): at most this many steps on its short side (the output
# of a forward convolution, the input of a transposed one), with at least MIN_CHANNELS input or
# output channels. At d=64 these are D's last and G's first layer, 2.3-3.1x faster in training.
MAX_STEPS = 16
MIN_CHANNELS = 512

_state = {"formulation": "auto"}


@contextlib.contextmanager
def conv_formulation(name):
    """Within the block, layers traced from now on use ``name``: "auto" (the measured rule),
    "standard" (TensorFlow's convolution) or "polyphase" (the matmul wherever it applies)."""
    if name not in FORMULATIONS:
        raise ValueError(f"conv formulation must be one of {FORMULATIONS}, got {name!r}")
    previous = _state["formulation"]
    _state["formulation"] = name
    try:
        yield
    finally:
        _state["formulation"] = previous


def _polyphase_device():
    """Whether the rule applies here: a CPU-only machine whose CPU lacks AVX-512.

    On the AVX-512 CPU measured, the two layers ran 1.8-3x faster as matmuls but whole training
    iterations at d=64 ran slower and took about 270 MiB more (see the README), so AVX-512 CPUs,
    GPUs and TPUs keep TensorFlow's convolution.
    """
    if tf.config.list_logical_devices("GPU") or tf.config.list_logical_devices("TPU"):
        return False
    try:
        with open(bfloat16_support.CPUINFO_PATH, encoding="utf-8", errors="replace") as f:
            flags = bfloat16_support.cpu_flags(f.read())
    except OSError:
        return False
    return bool(flags) and "avx512f" not in flags


def use_polyphase(steps, channels):
    """Whether a layer of this shape runs as the polyphase matmul under the current formulation.

    ``steps`` is the number of output steps of a forward convolution or of input steps of a
    transposed one (its short side); ``channels`` the larger of its input and output channel
    counts.
    """
    formulation = _state["formulation"]
    if formulation != "auto":
        return formulation == "polyphase"
    if not _polyphase_device():
        return False
    return steps <= MAX_STEPS and channels >= MIN_CHANNELS


def _same_padding(length_in, length_out, kernel_len, stride):
    """Left padding of TensorFlow's 'same' convolution from ``length_in`` to ``length_out``."""
    return max((length_out - 1) * stride + kernel_len - length_in, 0) // 2


def _frames(kernel_len, stride):
    return -(-kernel_len // stride)


def conv1d(inputs, kernel, stride, padding="same"):
    """``tf.nn.conv1d(inputs, kernel, stride, padding.upper())`` as one matmul.

    ``inputs`` ``[batch, length, in_channels]`` (static length), ``kernel`` ``[kernel_len,
    in_channels, out_channels]``; ``padding`` is "same" or "valid".
    """
    length, channels = inputs.shape[1], inputs.shape[2]
    kernel_len, _, filters = kernel.shape
    frames = _frames(kernel_len, stride)
    if padding == "same":
        steps = -(-length // stride)
        left = _same_padding(length, steps, kernel_len, stride)
    else:
        steps = (length - kernel_len) // stride + 1
        left = 0
    needed = (steps + frames - 1) * stride
    right = needed - length - left
    x = tf.pad(inputs, [[0, 0], [left, max(right, 0)], [0, 0]])[:, :needed]
    x = tf.reshape(x, [-1, steps + frames - 1, stride * channels])
    stacked = tf.concat([x[:, q:q + steps] for q in range(frames)], axis=-1)
    weights = tf.pad(kernel, [[0, frames * stride - kernel_len], [0, 0], [0, 0]])
    weights = tf.reshape(weights, [frames * stride * channels, filters])
    product = tf.matmul(tf.reshape(stacked, [-1, frames * stride * channels]), weights)
    return tf.reshape(product, [-1, steps, filters])


def conv1d_transpose(inputs, kernel, stride):
    """``tf.nn.conv1d_transpose`` with 'same' padding (output length ``length * stride``) as one
    matmul. ``inputs`` ``[batch, length, in_channels]``, ``kernel`` ``[kernel_len,
    out_channels, in_channels]`` (Keras' ``Conv1DTranspose`` layout)."""
    length, channels = inputs.shape[1], inputs.shape[2]
    kernel_len, filters, _ = kernel.shape
    frames = _frames(kernel_len, stride)
    length_out = length * stride
    left = _same_padding(length_out, length, kernel_len, stride)
    first, last = left // stride, -(-(left + length_out) // stride)
    x = tf.pad(inputs, [[0, 0], [frames - 1, frames - 1], [0, 0]])
    # Output frame f reads input steps f - q for q = 0 .. frames - 1.
    stacked = tf.concat([x[:, first - q + frames - 1:last - q + frames - 1]
                         for q in range(frames)], axis=-1)
    weights = tf.pad(kernel, [[0, frames * stride - kernel_len], [0, 0], [0, 0]])
    weights = tf.reshape(weights, [frames, stride, filters, channels])
    weights = tf.reshape(tf.transpose(weights, [0, 3, 1, 2]),
                         [frames * channels, stride * filters])
    product = tf.matmul(tf.reshape(stacked, [-1, frames * channels]), weights)
    samples = tf.reshape(product, [-1, (last - first) * stride, filters])
    start = left - first * stride
    return samples[:, start:start + length_out]


def _plain(layer):
    """Whether a Keras conv layer's settings are the ones the polyphase product covers."""
    return (layer.data_format == "channels_last" and getattr(layer, "groups", 1) == 1
            and tuple(layer.dilation_rate) == (1,) and layer.strides[0] > 1)


@keras.saving.register_keras_serializable(package="wavegan_tf")
class PolyphaseConv1D(keras.layers.Conv1D):
    """``keras.layers.Conv1D`` that runs as the polyphase matmul where :func:`use_polyphase`
    says so (strided, channels-last, 'same' or 'valid' padding, static length)."""

    def call(self, inputs):
        if not (_plain(self) and self.padding in ("same", "valid")
                and inputs.shape[1] is not None):
            return super().call(inputs)
        steps = self.compute_output_shape(inputs.shape)[1]
        if not use_polyphase(steps, max(inputs.shape[-1], self.filters)):
            return super().call(inputs)
        return _finish(self, conv1d(inputs, self.kernel, self.strides[0], self.padding))


@keras.saving.register_keras_serializable(package="wavegan_tf")
class PolyphaseConv1DTranspose(keras.layers.Conv1DTranspose):
    """``keras.layers.Conv1DTranspose`` that runs as the polyphase matmul where
    :func:`use_polyphase` says so (strided, channels-last, 'same' padding, no output padding)."""

    def call(self, inputs):
        if not (_plain(self) and self.padding == "same" and self.output_padding is None
                and inputs.shape[1] is not None):
            return super().call(inputs)
        if not use_polyphase(inputs.shape[1], max(inputs.shape[-1], self.filters)):
            return super().call(inputs)
        return _finish(self, conv1d_transpose(inputs, self.kernel, self.strides[0]))


def _finish(layer, outputs):
    """The bias and activation of a Keras conv layer, applied to its convolution's outputs."""
    if layer.use_bias:
        outputs = outputs + tf.reshape(layer.bias, [1, 1, layer.filters])
    if layer.activation is not None:
        outputs = layer.activation(outputs)
    return outputs
