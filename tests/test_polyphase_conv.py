"""The polyphase convolutions against TensorFlow's, alone and inside G and D."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from wavegan_tf import build_discriminator, build_generator
from wavegan_tf.cpu import polyphase_conv
from wavegan_tf.cpu.polyphase_conv import (PolyphaseConv1D, PolyphaseConv1DTranspose,
                                       conv_formulation)

# (kernel_len, stride, length): WaveGAN's 25/4 at even and odd lengths, its stride 2 (32768
# samples), a kernel shorter than the stride, and one that is a multiple of it.
SHAPES = [(25, 4, 64), (25, 4, 61), (25, 2, 30), (3, 4, 17), (8, 4, 16)]


# These tests set the oneDNN instruction-set limit themselves where they need one.
pytestmark = pytest.mark.usefixtures("onednn_unlimited")


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


PLANS = [polyphase_conv.MATMUL, polyphase_conv.STANDARD, polyphase_conv.Plan(True, False, True),
         polyphase_conv.Plan(False, True, False), polyphase_conv.Plan(False, False, True)]


def _penalty_terms(conv, x, w):
    """The layer's output, its input gradient, and the gradients of a penalty on that input
    gradient (a second derivative, as in WGAN-GP) with respect to the input and the kernel."""
    with tf.GradientTape() as outer:
        outer.watch([x, w])
        with tf.GradientTape() as inner:
            inner.watch(x)
            y = conv(x, w)
            score = tf.reduce_sum(tf.where(y > 0, y, 0.2 * y) * tf.sin(y))
        grad = inner.gradient(score, x)
        penalty = tf.reduce_sum(grad * grad) + score
    return [y, grad] + outer.gradient(penalty, [x, w])


@pytest.mark.parametrize("plan", PLANS)
@pytest.mark.parametrize("kernel_len,stride,length", SHAPES)
def test_planned_products_and_their_second_derivatives_equal_tf(plan, kernel_len, stride,
                                                                 length):
    x, w = _random(2, length, 4), _random(kernel_len, 4, 8, seed=1)
    expected = _penalty_terms(lambda x, w: tf.nn.conv1d(x, w, stride, "SAME"), x, w)
    actual = _penalty_terms(
        lambda x, w: polyphase_conv.planned_conv1d(x, w, stride, plan), x, w)
    for a, e in zip(actual, expected):
        assert a.shape == e.shape
        _close(a, e, atol=1e-5 * max(1.0, float(tf.reduce_max(tf.abs(e)))))


@pytest.mark.parametrize("kernel_len,stride,length", SHAPES)
def test_input_and_kernel_gradient_matmuls_equal_tf(kernel_len, stride, length):
    x, w = _random(3, length, 5), _random(kernel_len, 5, 6, seed=1)
    steps = -(-length // stride)
    grads = _random(3, steps, 6, seed=2)
    with tf.GradientTape() as tape:
        tape.watch([x, w])
        y = tf.nn.conv1d(x, w, stride, "SAME")
    expected = tape.gradient(y, [x, w], output_gradients=grads)
    _close(polyphase_conv.conv1d_input_gradient(grads, w, length, stride), expected[0])
    _close(polyphase_conv.conv1d_kernel_gradient(x, grads, kernel_len, stride), expected[1])


@pytest.mark.parametrize("jit_compile", [False, True])
def test_kernel_gradient_in_a_graph_and_under_xla_equals_tf(jit_compile):
    # A graph writes the blocks into the result in place; XLA concatenates them.
    x, grads = _random(3, 64, 5), _random(3, 16, 6, seed=2)
    w = _random(25, 5, 6, seed=1)
    with tf.GradientTape() as tape:
        tape.watch(w)
        y = tf.nn.conv1d(x, w, 4, "SAME")
    expected = tape.gradient(y, w, output_gradients=grads)
    compiled = tf.function(lambda x, g: polyphase_conv.conv1d_kernel_gradient(x, g, 25, 4),
                           jit_compile=jit_compile)
    _close(compiled(x, grads), expected)


def test_gradient_penalty_through_the_discriminator_equals_the_standard_layers():
    keras.utils.set_random_seed(0)
    discriminator = build_discriminator(model_dim=4, phase_shuffle_rad=0)
    audio = _random(2, 16384, 1)

    def run():
        weights = discriminator.trainable_weights
        with tf.GradientTape() as outer:
            with tf.GradientTape() as inner:
                inner.watch(audio)
                logit = tf.reduce_sum(discriminator(audio, training=True))
            grad = inner.gradient(logit, audio)
            penalty = tf.reduce_sum(grad * grad)
        # D is piecewise linear in its biases: their second derivatives are None either way.
        return [grad] + [tf.convert_to_tensor(g) for g in outer.gradient(penalty, weights)
                         if g is not None]

    with conv_formulation("standard"):
        expected = run()
    with conv_formulation("polyphase"):
        actual = run()
    assert len(actual) == len(expected) == 1 + 6   # the input gradient, six kernels
    for a, e in zip(actual, expected):
        _close(a, e, atol=1e-4 * max(1.0, float(tf.reduce_max(tf.abs(e)))))


@pytest.mark.parametrize("training", [False, True])
@pytest.mark.parametrize("num_classes", [0, 3])
def test_models_give_the_same_audio_logits_and_gradients_with_either_formulation(num_classes,
                                                                                 training):
    """In training the custom gradients tie the products; otherwise TensorFlow differentiates
    the forward products. (No phase shuffle: in training it would draw different shifts.)"""
    keras.utils.set_random_seed(0)
    generator = build_generator(model_dim=4, num_classes=num_classes)
    discriminator = build_discriminator(model_dim=4, num_classes=num_classes,
                                        phase_shuffle_rad=0)
    z, label = _random(2, 100), tf.constant([0, 2])

    def run():
        with tf.GradientTape() as tape:
            audio = generator([z, label] if num_classes else z, training=training)
            logit = discriminator([audio, label] if num_classes else audio, training=training)
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


def test_avx2_rule_picks_each_product_by_shape():
    plan = polyphase_conv.rule_plan
    assert plan("avx2", 4096, 1, 64) == (False, True, False)
    assert plan("avx2", 1024, 64, 128) == polyphase_conv.STANDARD
    assert plan("avx2", 256, 128, 256) == polyphase_conv.STANDARD
    assert plan("avx2", 64, 256, 512) == (False, False, True)
    assert plan("avx2", 16, 512, 1024) == polyphase_conv.MATMUL
    assert plan("avx2", 16, 128, 256) == polyphase_conv.STANDARD                # d=16


def test_avx512_rule_picks_each_product_by_shape():
    plan = polyphase_conv.rule_plan
    # d=64, D's layers from the first (in terms of the forward convolution; G's mirror them).
    assert plan("avx512", 4096, 1, 64) == (False, True, False)
    assert plan("avx512", 1024, 64, 128) == (False, False, False)
    assert plan("avx512", 256, 128, 256) == (True, False, True)
    assert plan("avx512", 64, 256, 512) == (True, False, True)
    assert plan("avx512", 16, 512, 1024) == (True, True, True)
    # d=16: only the one-channel layer's input gradient.
    assert plan("avx512", 4096, 1, 16) == (False, True, False)
    assert plan("avx512", 16, 128, 256) == polyphase_conv.STANDARD


@pytest.mark.parametrize("kind", [None, "avx2", "avx512"])
def test_formulations_override_the_rule(monkeypatch, kind):
    monkeypatch.setattr(polyphase_conv, "cpu_kind", lambda: kind)
    shape = (64, "float32", 16, 512, 1024, 25, 4)
    assert polyphase_conv.layer_plan(shape) == polyphase_conv.rule_plan(kind, 16, 512, 1024)
    with conv_formulation("standard"):
        assert polyphase_conv.layer_plan(shape) == polyphase_conv.STANDARD
    with conv_formulation("polyphase"):
        assert polyphase_conv.layer_plan((64, "float32", 4096, 64, 128, 25, 4)) == \
            polyphase_conv.MATMUL


def test_gpus_tpus_and_unknown_cpus_keep_the_standard_convolution():
    assert polyphase_conv.rule_plan(None, 16, 512, 1024) == polyphase_conv.STANDARD


def test_unknown_formulation_is_an_error_naming_the_choices():
    with pytest.raises(ValueError, match="must be one of .*'auto'.*got 'fast'"):
        with conv_formulation("fast"):
            pass


def _record_matmuls(monkeypatch):
    """Records the input shape of every forward and input-gradient matmul traced from now on."""
    calls = []
    for name in ("conv1d", "conv1d_input_gradient"):
        original = getattr(polyphase_conv, name)

        def record(inputs, *args, original=original, name=name, **kwargs):
            calls.append((name, tuple(inputs.shape[1:])))
            return original(inputs, *args, **kwargs)

        monkeypatch.setattr(polyphase_conv, name, record)
    return calls


@pytest.mark.parametrize("kind,model_dim,expected", [
    # G's first layer (16 input steps) and last (one output channel), D's last layer.
    ("avx2", 64, [("conv1d_input_gradient", (16, 1024)), ("conv1d_input_gradient", (4096, 64)),
                  ("conv1d", (64, 512))]),
    # At d=16 only G's last layer.
    ("avx512", 16, [("conv1d_input_gradient", (4096, 16))]),
])
def test_the_models_run_the_rules_products_as_matmuls(monkeypatch, kind, model_dim, expected):
    monkeypatch.setattr(polyphase_conv, "cpu_kind", lambda: kind)
    calls = _record_matmuls(monkeypatch)
    generator = build_generator(model_dim=model_dim)
    discriminator = build_discriminator(model_dim=model_dim)
    calls.clear()
    discriminator(generator(_random(1, 100)))
    assert calls == expected
    calls.clear()
    discriminator(generator(_random(1, 100), training=True), training=True)
    assert calls == expected


@pytest.mark.parametrize("flags,expected", [("fma avx2", "avx2"),
                                            ("avx2 avx512f avx512bw", "avx512"), ("", None)])
def test_the_cpu_kind_comes_from_the_cpu_flags(monkeypatch, tmp_path, flags, expected):
    path = tmp_path / "cpuinfo"
    path.write_text(f"processor\t: 0\nflags\t\t: {flags}\n")
    monkeypatch.setattr(polyphase_conv.bfloat16_support, "CPUINFO_PATH", str(path))
    monkeypatch.setattr(polyphase_conv.tf.config, "list_logical_devices", lambda kind: [])
    assert polyphase_conv.cpu_kind() == expected


@pytest.mark.parametrize("limit,expected", [("AVX2", "avx2"), ("avx", "avx2"),
                                            ("AVX512_CORE_BF16", "avx512"), ("ALL", "avx512")])
def test_a_onednn_isa_limit_below_avx512_selects_the_avx2_rule(monkeypatch, tmp_path, limit,
                                                                 expected):
    path = tmp_path / "cpuinfo"
    path.write_text("processor\t: 0\nflags\t\t: avx2 avx512f\n")
    monkeypatch.setattr(polyphase_conv.bfloat16_support, "CPUINFO_PATH", str(path))
    monkeypatch.setattr(polyphase_conv.tf.config, "list_logical_devices", lambda kind: [])
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", limit)
    assert polyphase_conv.cpu_kind() == expected


def test_a_gpu_keeps_the_standard_convolution(monkeypatch):
    monkeypatch.setattr(polyphase_conv.tf.config, "list_logical_devices",
                        lambda kind: ["/device:GPU:0"] if kind == "GPU" else [])
    assert polyphase_conv.cpu_kind() is None
