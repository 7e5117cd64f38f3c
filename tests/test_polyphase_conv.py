"""The polyphase convolutions against TensorFlow's, alone and inside G and D."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from wavegan_tf import build_discriminator, build_generator, polyphase_conv
from wavegan_tf.polyphase_conv import (PolyphaseConv1D, PolyphaseConv1DTranspose,
                                       conv_formulation)

# (kernel_len, stride, length): WaveGAN's 25/4 at even and odd lengths, its stride 2 (32768
# samples), a kernel shorter than the stride, and one that is a multiple of it.
SHAPES = [(25, 4, 64), (25, 4, 61), (25, 2, 30), (3, 4, 17), (8, 4, 16)]


def _random(*shape, seed=0):
    return tf.constant(np.random.default_rng(seed).normal(size=shape), tf.float32)


def _close(a, b, atol=1e-5):
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-5, atol=atol)


@pytest.mark.parametrize("kernel_len,stride,length", SHAPES)
@pytest.mark.parametrize("padding", ["same", "valid"])
def test_conv1d_values_and_gradients_equal_tf_conv1d(kernel_len, stride, length, padding):
    x, w = _random(3, length, 5), _random(kernel_len, 5, 6, seed=1)

    def values_and_grads(conv):
        with tf.GradientTape() as tape:
            tape.watch([x, w])
            y = conv(x, w)
            loss = tf.reduce_sum(y * _random(*y.shape, seed=2))
        return [y] + tape.gradient(loss, [x, w])

    expected = values_and_grads(lambda x, w: tf.nn.conv1d(x, w, stride, padding.upper()))
    actual = values_and_grads(lambda x, w: polyphase_conv.conv1d(x, w, stride, padding))
    for a, e in zip(actual, expected):
        assert a.shape == e.shape
        _close(a, e)


@pytest.mark.parametrize("kernel_len,stride,length", SHAPES)
def test_conv1d_transpose_values_and_gradients_equal_tf(kernel_len, stride, length):
    x, w = _random(3, length, 6), _random(kernel_len, 4, 6, seed=1)

    def values_and_grads(conv):
        with tf.GradientTape() as tape:
            tape.watch([x, w])
            y = conv(x, w)
            loss = tf.reduce_sum(y * _random(*y.shape, seed=2))
        return [y] + tape.gradient(loss, [x, w])

    expected = values_and_grads(lambda x, w: tf.nn.conv1d_transpose(
        x, w, [3, length * stride, 4], stride, "SAME"))
    actual = values_and_grads(lambda x, w: polyphase_conv.conv1d_transpose(x, w, stride))
    assert actual[0].shape == (3, length * stride, 4)
    for a, e in zip(actual, expected):
        _close(a, e)


def test_conv1d_second_derivative_of_the_gradient_penalty_equals_tf():
    """The penalty differentiates D's input gradient again with respect to the weights."""
    x, w = _random(2, 64, 4), _random(25, 4, 8, seed=1)

    def penalty_grads(conv):
        with tf.GradientTape() as outer:
            outer.watch([x, w])
            with tf.GradientTape() as inner:
                inner.watch(x)
                y = conv(x, w)
                score = tf.reduce_sum(tf.where(y > 0, y, 0.2 * y) * tf.sin(y))
            grad = inner.gradient(score, x)
            penalty = tf.reduce_sum(grad * grad)
        return outer.gradient(penalty, [x, w])

    expected = penalty_grads(lambda x, w: tf.nn.conv1d(x, w, 4, "SAME"))
    actual = penalty_grads(lambda x, w: polyphase_conv.conv1d(x, w, 4))
    for a, e in zip(actual, expected):
        _close(a, e, atol=1e-4 * float(tf.reduce_max(tf.abs(e))))


@pytest.mark.parametrize("num_classes", [0, 3])
def test_models_give_the_same_audio_logits_and_gradients_with_either_formulation(num_classes):
    keras.utils.set_random_seed(0)
    generator = build_generator(model_dim=4, num_classes=num_classes)
    discriminator = build_discriminator(model_dim=4, num_classes=num_classes)
    z, label = _random(2, 100), tf.constant([0, 2])

    def run():
        with tf.GradientTape() as tape:
            audio = generator([z, label] if num_classes else z)
            logit = discriminator([audio, label] if num_classes else audio)
            loss = tf.reduce_sum(logit)
        weights = generator.trainable_weights + discriminator.trainable_weights
        grads = tape.gradient(loss, weights)
        return [audio, logit] + [tf.convert_to_tensor(grad) for grad in grads]

    with conv_formulation("standard"):
        expected = run()
    with conv_formulation("polyphase"):
        actual = run()
    for a, e in zip(actual, expected):
        _close(a, e, atol=1e-5 * max(1.0, float(tf.reduce_max(tf.abs(e)))))


def test_layers_keep_the_keras_weights_names_and_parameter_counts():
    generator, discriminator = build_generator(), build_discriminator()
    assert generator.count_params() == 19_065_345
    assert discriminator.count_params() == 17_427_969
    conv = discriminator.get_layer("downconv_4")
    assert isinstance(conv, keras.layers.Conv1D)
    assert [w.path for w in conv.weights] == ["downconv_4/kernel", "downconv_4/bias"]
    upconv = generator.get_layer("upconv_0")
    assert isinstance(upconv, keras.layers.Conv1DTranspose)
    assert [tuple(w.shape) for w in upconv.weights] == [(25, 512, 1024), (512,)]


def test_weights_move_between_standard_and_polyphase_layers_with_equal_outputs():
    x = _random(2, 16, 32)
    plain = keras.layers.Conv1DTranspose(16, 25, strides=4, padding="same")
    fast = PolyphaseConv1DTranspose(16, 25, strides=4, padding="same")
    plain.build(x.shape)
    fast.build(x.shape)
    fast.set_weights(plain.get_weights())
    with conv_formulation("polyphase"):
        _close(fast(x), plain(x))


def test_keras_file_round_trip_keeps_the_layer_classes_and_outputs(tmp_path):
    keras.utils.set_random_seed(0)
    model = build_discriminator(model_dim=4)
    path = str(tmp_path / "d.keras")
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    assert type(loaded.get_layer("downconv_0")) is PolyphaseConv1D
    audio = _random(2, 16384, 1)
    with conv_formulation("polyphase"):
        _close(loaded(audio), model(audio))


def test_unsupported_settings_fall_back_to_the_standard_convolution():
    x = _random(2, 20, 3)
    layer = PolyphaseConv1D(4, 5, strides=1, padding="causal")
    reference = keras.layers.Conv1D(4, 5, strides=1, padding="causal")
    layer.build(x.shape)
    reference.build(x.shape)
    reference.set_weights(layer.get_weights())
    with conv_formulation("polyphase"):
        _close(layer(x), reference(x))


def test_auto_rule_picks_the_few_steps_wide_layers_on_avx2_cpus(monkeypatch):
    monkeypatch.setattr(polyphase_conv, "_polyphase_device", lambda: True)
    assert polyphase_conv.use_polyphase(16, 1024)       # D's last, G's first layer at d=64
    assert not polyphase_conv.use_polyphase(64, 512)    # D's and G's next ones
    assert not polyphase_conv.use_polyphase(16, 256)    # d=16
    with conv_formulation("standard"):
        assert not polyphase_conv.use_polyphase(16, 1024)
    with conv_formulation("polyphase"):
        assert polyphase_conv.use_polyphase(4096, 64)
    assert polyphase_conv.use_polyphase(16, 1024)


def test_other_devices_keep_the_standard_convolution(monkeypatch):
    monkeypatch.setattr(polyphase_conv, "_polyphase_device", lambda: False)
    assert not polyphase_conv.use_polyphase(16, 1024)
    with conv_formulation("polyphase"):
        assert polyphase_conv.use_polyphase(16, 1024)


def test_unknown_formulation_is_an_error_naming_the_choices():
    with pytest.raises(ValueError, match="must be one of .*'auto'.*got 'fast'"):
        with conv_formulation("fast"):
            pass


def test_auto_rule_runs_only_the_wide_few_step_layers_of_the_models_as_matmuls(monkeypatch):
    """At d=32, G's first layer (16 input steps, 512 channels) and D's last (16 output steps,
    512 channels)."""
    monkeypatch.setattr(polyphase_conv, "_polyphase_device", lambda: True)
    calls = []
    for name in ("conv1d", "conv1d_transpose"):
        original = getattr(polyphase_conv, name)

        def record(inputs, *args, original=original, **kwargs):
            calls.append(tuple(inputs.shape[1:]))
            return original(inputs, *args, **kwargs)

        monkeypatch.setattr(polyphase_conv, name, record)
    generator, discriminator = build_generator(model_dim=32), build_discriminator(model_dim=32)
    calls.clear()
    discriminator(generator(_random(1, 100)))
    assert calls == [(16, 512), (64, 256)]


@pytest.mark.parametrize("flags,expected", [("fma avx2", True), ("avx2 avx512f avx512bw", False),
                                            ("", False)])
def test_the_rule_applies_to_cpus_without_avx512(monkeypatch, tmp_path, flags, expected):
    path = tmp_path / "cpuinfo"
    path.write_text(f"processor\t: 0\nflags\t\t: {flags}\n")
    monkeypatch.setattr(polyphase_conv.bfloat16_support, "CPUINFO_PATH", str(path))
    monkeypatch.setattr(polyphase_conv.tf.config, "list_logical_devices", lambda kind: [])
    assert polyphase_conv._polyphase_device() is expected
