"""The minibatch standard-deviation feature (Karras et al., ProGAN, 2018) for the discriminator.

D sees one example at a time, so a G that makes the same clip for every z fools it as well as a
varied one. This layer appends one channel holding the mean, over features, of the standard
deviation of each feature across the batch: a collapsed batch shows a near-zero value that D
can learn to reject. Under micro-batches or replicas the statistic is taken over each part.
"""

import keras
from keras import layers, ops

# Added to the variance before the square root: keeps the gradient finite for equal examples.
VARIANCE_FLOOR = 1e-8


@keras.saving.register_keras_serializable(package="wavegan_tf")
class MinibatchStdDev(layers.Layer):
    """``[batch, time, channels]`` to ``[batch, time, channels + 1]``: the batch's mean feature
    standard deviation appended as a constant channel."""

    def call(self, x):
        variance = ops.var(ops.cast(x, "float32"), axis=0)
        spread = ops.mean(ops.sqrt(variance + VARIANCE_FLOOR))
        feature = ops.ones_like(x[..., :1]) * ops.cast(spread, x.dtype)
        return ops.concatenate([x, feature], axis=-1)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (input_shape[-1] + 1,)
