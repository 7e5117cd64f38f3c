"""PhaseShuffle: identity at inference, a reflect-padded shift in training, XLA, serialization."""

import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from wavegan_tf import PhaseShuffle
from wavegan_tf.nets.phase_shuffle import shift_with_reflection


def _reference_shift(x, k):
    """The original code's definition: pad by k on one side (reflect), keep the length."""
    length = x.shape[1]
    pad_l, pad_r = max(k, 0), max(-k, 0)
    padded = np.pad(x, [(0, 0), (pad_l, pad_r), (0, 0)], mode="reflect")
    return padded[:, pad_r:pad_r + length]


def _inputs(batch=3, length=12, channels=2):
    return np.random.default_rng(0).normal(size=(batch, length, channels)).astype("float32")


@pytest.mark.parametrize("k", [-2, -1, 0, 1, 2])
def test_shift_equals_reflect_padded_shift_for_each_k(k):
    x = _inputs()
    out = shift_with_reflection(tf.constant(x), tf.constant(k), 2).numpy()
    np.testing.assert_array_equal(out, _reference_shift(x, k))


def _pad_roll_slice(x, k, rad):
    """The shift by autodiff-able TensorFlow ops (reflect pad by rad, roll, keep the middle):
    a reference for the gather's custom gradients."""
    padded = tf.pad(x, [[0, 0], [rad, rad], [0, 0]], mode="REFLECT")
    return tf.roll(padded, k, axis=1)[:, rad:rad + x.shape[1]]


def _gradients_of_both_orders(shift, x, weights, direction):
    """First derivative of sum(weights * shift(x)^2) w.r.t. x, and the derivative of its inner
    product with ``direction``: the second derivative goes through the first's gradient."""
    with tf.GradientTape() as outer:
        outer.watch(x)
        with tf.GradientTape() as inner:
            inner.watch(x)
            value = tf.reduce_sum(weights * tf.square(shift(x)))
        first = inner.gradient(value, x)
        projected = tf.reduce_sum(first * direction)
    return first, outer.gradient(projected, x)


@pytest.mark.parametrize("rad", [1, 2, 3])
def test_gradients_of_both_orders_match_autodiff_of_pad_roll_slice(rad):
    rng = np.random.default_rng(rad)
    x = tf.constant(_inputs(length=9))
    weights = tf.constant(rng.normal(size=x.shape).astype("float32"))
    direction = tf.constant(rng.normal(size=x.shape).astype("float32"))
    for k in range(-rad, rad + 1):
        ours = _gradients_of_both_orders(
            lambda t: shift_with_reflection(t, tf.constant(k), rad), x, weights, direction)
        reference = _gradients_of_both_orders(
            lambda t: _pad_roll_slice(t, k, rad), x, weights, direction)
        for got, want in zip(ours, reference):
            np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-5, atol=1e-5)


def test_gradients_of_both_orders_under_xla_and_in_bfloat16():
    x = tf.constant(_inputs(length=9))
    weights = tf.constant(np.random.default_rng(5).normal(size=x.shape).astype("float32"))
    compiled = tf.function(lambda t, k: _gradients_of_both_orders(
        lambda u: shift_with_reflection(u, k, 2), t, weights, weights), jit_compile=True)
    for k in (-2, 1):
        reference = _gradients_of_both_orders(
            lambda u, k=k: _pad_roll_slice(u, k, 2), x, weights, weights)
        for got, want in zip(compiled(x, tf.constant(k)), reference):
            np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-5, atol=1e-5)
        y = tf.cast(x, tf.bfloat16)
        out = shift_with_reflection(y, tf.constant(k), 2)
        assert out.dtype == tf.bfloat16
        np.testing.assert_array_equal(out.numpy().astype("float32"),
                                      _reference_shift(y.numpy().astype("float32"), k))


def test_identity_when_not_training():
    x = _inputs()
    layer = PhaseShuffle(2)
    np.testing.assert_array_equal(layer(x, training=False).numpy(), x)
    np.testing.assert_array_equal(layer(x).numpy(), x)


def test_training_applies_one_of_the_allowed_shifts_to_the_whole_batch():
    x = _inputs()
    layer = PhaseShuffle(2, seed=3)
    seen = set()
    for _ in range(60):
        out = layer(x, training=True).numpy()
        matches = [k for k in range(-2, 3) if np.array_equal(out, _reference_shift(x, k))]
        assert len(matches) == 1, "output must be exactly one whole-batch shift"
        seen.add(matches[0])
    assert seen == {-2, -1, 0, 1, 2}


def test_seeded_layers_repeat_their_shifts():
    x = _inputs()
    a, b = PhaseShuffle(2, seed=7), PhaseShuffle(2, seed=7)
    for _ in range(5):
        np.testing.assert_array_equal(a(x, training=True), b(x, training=True))


def test_static_length_is_kept_so_dense_can_follow():
    inputs = keras.Input((12, 2))
    shuffled = PhaseShuffle(2)(inputs)
    assert tuple(shuffled.shape) == (None, 12, 2)
    logits = keras.layers.Dense(1)(keras.layers.Flatten()(shuffled))
    model = keras.Model(inputs, logits)
    assert tuple(model(_inputs(), training=True).shape) == (3, 1)


def test_runs_under_xla_jit_compile():
    x = tf.constant(_inputs())
    layer = PhaseShuffle(2, seed=1)
    shuffle = tf.function(lambda t: layer(t, training=True), jit_compile=True)
    allowed = [_reference_shift(x.numpy(), k) for k in range(-2, 3)]
    for _ in range(5):
        out = shuffle(x).numpy()
        assert any(np.array_equal(out, ref) for ref in allowed)


def test_config_round_trip():
    layer = PhaseShuffle(3, seed=5, name="ps")
    clone = PhaseShuffle.from_config(layer.get_config())
    assert (clone.rad, clone.seed, clone.name) == (3, 5, "ps")


def test_saved_keras_model_reloads_with_the_layer(tmp_path):
    inputs = keras.Input((12, 2))
    model = keras.Model(inputs, keras.layers.Dense(1)(PhaseShuffle(2)(inputs)))
    path = os.path.join(tmp_path, "m.keras")
    model.save(path)
    loaded = keras.saving.load_model(path)  # safe_mode stays on
    assert isinstance(loaded.layers[1], PhaseShuffle)
    np.testing.assert_allclose(loaded(_inputs()), model(_inputs()), rtol=1e-6)


@pytest.mark.parametrize("rad", [-1, 1.5])
def test_bad_radius_is_rejected(rad):
    with pytest.raises(ValueError, match="rad"):
        PhaseShuffle(rad)


def test_radius_longer_than_the_input_is_rejected():
    with pytest.raises(ValueError, match="length 2"):
        PhaseShuffle(2)(keras.Input((2, 1)))
