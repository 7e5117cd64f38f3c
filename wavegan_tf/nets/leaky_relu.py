"""Leaky ReLU for the discriminator, written so that its derivatives stay lean.

The gradient penalty differentiates D twice. TensorFlow's fused ``LeakyRelu`` (what
``keras.layers.LeakyReLU`` runs) has a second derivative that builds ``zeros_like(x)`` for every
activation; those zero tensors depend only on a static shape, so the graph runtime may compute
them all when the train step starts and hold them until the end: at d=64 that was over 1 GB.
Autodiff of ``where(x > 0, x, slope * x)`` avoids that but makes two selects, a product and a
sum per backward pass (three activation-sized tensors at once in D's first layer).

This layer runs the fused op forward and gives it custom gradients: the backward pass scales the
incoming gradient by ``1`` where ``x > 0`` and by ``slope`` elsewhere (as the fused op, slope at
``x = 0``), keeping only the boolean mask ``x > 0`` from the forward pass (a quarter of the
features' size in float32); that scaling is linear, so its own gradient is the same scaling
(any order of derivative). The original code's ``tf.maximum(alpha * x, x)`` is the same
function.
"""

import keras
import tensorflow as tf


@keras.saving.register_keras_serializable(package="wavegan_tf")
class LeakyReLU(keras.layers.Layer):
    """``x`` where ``x > 0``, else ``negative_slope * x``.

    Args:
        negative_slope: the slope for ``x <= 0`` (0.2 in the paper's discriminator).
    """

    def __init__(self, negative_slope=0.2, **kwargs):
        super().__init__(**kwargs)
        if not negative_slope >= 0:
            raise ValueError(
                f"LeakyReLU negative_slope must be >= 0, got negative_slope={negative_slope!r}")
        self.negative_slope = float(negative_slope)
        self.supports_masking = True

    def call(self, inputs):
        return leaky_relu(inputs, self.negative_slope)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update({"negative_slope": self.negative_slope})
        return config


def leaky_relu(x, negative_slope):
    """``x`` where ``x > 0``, else ``negative_slope * x``, with the lean gradients of the module
    doc."""
    @tf.custom_gradient
    def activate(x):
        positive = x > 0
        return (tf.nn.leaky_relu(x, alpha=negative_slope),
                lambda grads: _scale(grads, positive, negative_slope))
    return activate(x)


def _scale(grads, positive, negative_slope):
    """``grads`` times 1 where ``positive``, else times ``negative_slope``; its gradient is the
    same scaling. The factors are made only once ``grads`` exists: made from the mask alone they
    could be computed during the forward pass and held, at four times the mask's size."""
    @tf.custom_gradient
    def scale(g):
        with tf.control_dependencies([g]):
            factors = tf.where(positive, tf.ones((), g.dtype),
                               tf.constant(negative_slope, g.dtype))
        return g * factors, lambda upstream: _scale(upstream, positive, negative_slope)
    return scale(grads)
