"""The discriminator's LeakyReLU: Keras's values and gradients (of both orders, in float32 and
bfloat16), lean derivatives."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from wavegan_tf.nets.leaky_relu import LeakyReLU, leaky_relu


def _inputs():
    values = np.random.default_rng(0).normal(size=(3, 50, 4)).astype("float32")
    values[0, :3, 0] = 0.0  # the kink: slope 0.2 at exactly 0, as TensorFlow's fused op
    return tf.constant(values)


def test_values_and_gradients_match_keras_leaky_relu():
    x = _inputs()
    ours, reference = LeakyReLU(0.2), keras.layers.LeakyReLU(0.2)
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(x)
        y_ours, y_ref = ours(x), reference(x)
    np.testing.assert_allclose(y_ours, y_ref, rtol=1e-6)
    np.testing.assert_allclose(tape.gradient(y_ours, x), tape.gradient(y_ref, x), rtol=1e-6)
    assert float(tape.gradient(y_ours, x)[0, 0, 0]) == pytest.approx(0.2)


def test_second_derivative_through_a_weighted_layer_matches_keras():
    # The gradient penalty's pattern: the norm of an input gradient, differentiated w.r.t. a
    # weight in front of the activation.
    x = _inputs()
    w = tf.Variable(1.3)

    def penalty(activation):
        with tf.GradientTape() as outer:
            with tf.GradientTape() as inner:
                inner.watch(x)
                y = tf.reduce_sum(activation(w * x) ** 2)
            slope = tf.norm(inner.gradient(y, x))
        return outer.gradient(slope, w)

    np.testing.assert_allclose(penalty(LeakyReLU(0.2)), penalty(keras.layers.LeakyReLU(0.2)),
                               rtol=1e-5)


def test_second_derivative_builds_no_full_size_zeros():
    # The reason for the layer: TensorFlow's LeakyRelu second derivative makes zeros_like(x).
    x = tf.TensorSpec((2, 64, 8), tf.float32)

    def full_size_fills(activation):
        @tf.function
        def grad_of_grad(inputs):
            with tf.GradientTape() as outer:
                outer.watch(inputs)
                with tf.GradientTape() as inner:
                    inner.watch(inputs)
                    y = tf.reduce_sum(activation(inputs) ** 2)
                g = tf.reduce_sum(inner.gradient(y, inputs) ** 2)
            return outer.gradient(g, inputs)
        graph = grad_of_grad.get_concrete_function(x).graph
        # Fills that nothing consumes are pruned when the function runs.
        return [op.name for op in graph.get_operations()
                if op.type in ("ZerosLike", "Fill", "OnesLike", "BroadcastTo")
                and op.outputs[0].shape == x.shape and op.outputs[0].consumers()]

    assert full_size_fills(keras.layers.LeakyReLU(0.2))
    assert not full_size_fills(LeakyReLU(0.2))


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_third_derivative_and_bfloat16_match_autodiff_of_where(dtype):
    # The custom gradients call each other; three orders exercise the chain both ways.
    x = tf.cast(_inputs(), dtype)

    def derivatives(activation):
        with tf.GradientTape() as third:
            third.watch(x)
            with tf.GradientTape() as second:
                second.watch(x)
                with tf.GradientTape() as first:
                    first.watch(x)
                    y = tf.reduce_sum(activation(x) * x)
                g1 = first.gradient(y, x)
                s1 = tf.reduce_sum(g1 * g1)
            g2 = second.gradient(s1, x)
            s2 = tf.reduce_sum(g2 * x)
        g3 = third.gradient(s2, x)
        return [tf.cast(t, "float32").numpy() for t in (activation(x), g1, g2, g3)]

    reference = lambda t: tf.where(t > 0, t, t * 0.2)  # noqa: E731
    ours = lambda t: leaky_relu(t, 0.2)  # noqa: E731
    for got, want in zip(derivatives(ours), derivatives(reference)):
        np.testing.assert_allclose(got, want, rtol=1e-2 if dtype == "bfloat16" else 1e-6)


def test_serialization_round_trip():
    layer = LeakyReLU(0.3, name="act")
    clone = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(layer))
    assert isinstance(clone, LeakyReLU)
    assert clone.negative_slope == pytest.approx(0.3) and clone.name == "act"


def test_negative_slope_must_not_be_negative():
    with pytest.raises(ValueError, match="negative_slope=-0.1"):
        LeakyReLU(-0.1)
