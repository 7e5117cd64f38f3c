"""The three products of a strided 'same' 1-D convolution, as matmuls and as TensorFlow's ops.

Cut the padded input into frames of ``stride`` samples: output step ``t`` reads frames ``t .. t +
Q - 1`` (``Q = ceil(kernel / stride)``, 7 for WaveGAN's kernel 25 and stride 4), so the
convolution (:func:`conv1d`) is the sum over the ``Q`` frame offsets of each offset's frames
times its block of the kernel (zero-padded to ``Q * stride`` taps). The input gradient
(:func:`conv1d_input_gradient`, the forward pass of a transposed convolution) multiplies the
output gradient by each transposed block and adds the ``Q`` results back into place
(overlap-add); the kernel gradient (:func:`conv1d_kernel_gradient`) multiplies each offset's
frames, transposed, by the output gradient. All three give the values of TensorFlow's ops
(``standard_*``) up to float rounding. The offsets are taken one at a time, so no ``Q``-fold copy
of the input is made. :mod:`wavegan_tf.cpu.polyphase_conv` chooses between the two per layer.
"""

import tensorflow as tf
from tensorflow.python.ops import control_flow_util

# Frames of at most this many values (stride x channels) take the input gradient as one product.
NARROW_FRAME = 64


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
