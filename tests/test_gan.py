"""The WaveGAN trainer and its losses: values, gradient penalty, fit, clipping, determinism."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from wavegan_tf import GANTrainer, build_discriminator, build_generator, critic_batches
from wavegan_tf.training import losses

SLICE = 16384
LATENT = 8


def _real_dataset(n_critic, batch=2, seed=0):
    rng = np.random.default_rng(seed)
    audio = rng.uniform(-0.5, 0.5, (8 * batch * n_critic, SLICE, 1)).astype("float32")
    batches = tf.data.Dataset.from_tensor_slices(audio).batch(batch, drop_remainder=True)
    return critic_batches(batches.repeat(), n_critic)


def _tiny_gan(loss="wgan-gp", n_critic=2, seed=1, micro_batches=1, optimizers=None):
    keras.utils.set_random_seed(seed)
    gan = GANTrainer(build_generator(latent_dim=LATENT, model_dim=2),
                  build_discriminator(model_dim=2), loss=loss, n_critic=n_critic,
                  latent_dim=LATENT, seed=seed, micro_batches=micro_batches)
    gan.compile(**(optimizers or {}))
    return gan


def _sgd():
    """Plain SGD, whose update is proportional to the gradient (Adam's first step is not)."""
    return {"g_optimizer": keras.optimizers.SGD(0.05), "d_optimizer": keras.optimizers.SGD(0.05)}


def _linear_critic(weights, bias=0.3):
    """D(x) = sum(w * x) + b: its input gradient is w for every example."""
    inputs = keras.Input(weights.shape)
    flat = keras.layers.Flatten()(inputs)
    dense = keras.layers.Dense(1)
    model = keras.Model(inputs, dense(flat))
    dense.set_weights([weights.reshape(-1, 1), np.array([bias], "float32")])
    return model


def test_gradient_penalty_matches_a_critic_with_known_input_gradient():
    rng = np.random.default_rng(0)
    w = rng.normal(size=(64, 1)).astype("float32") * 0.3
    gan = GANTrainer(build_generator(latent_dim=LATENT, slice_len=SLICE, model_dim=2),
                  _linear_critic(w), latent_dim=LATENT, seed=0)
    real = tf.constant(rng.normal(size=(5, 64, 1)).astype("float32"))
    fake = tf.constant(rng.normal(size=(5, 64, 1)).astype("float32"))
    expected = (np.linalg.norm(w) - 1.0) ** 2
    np.testing.assert_allclose(gan._gradient_penalty(real, fake).numpy(), expected, rtol=1e-5)


def test_gradient_penalty_is_zero_for_a_unit_norm_gradient():
    grads = tf.constant(np.stack([np.eye(4, 1)[:, :1] * s for s in (1.0, -1.0)]), tf.float32)
    assert float(losses.gradient_penalty(grads)) == pytest.approx(0.0, abs=1e-7)


def test_gradient_penalty_takes_the_norm_per_example():
    grads = tf.constant([[[3.0], [4.0]], [[0.0], [0.0]]])  # norms 5 and 0
    assert float(losses.gradient_penalty(grads)) == pytest.approx(((5 - 1) ** 2 + 1) / 2)


def test_interpolation_uses_one_alpha_per_example():
    real = tf.zeros((3, 4, 2))
    fake = tf.ones((3, 4, 2))
    x_hat = losses.interpolate(real, fake, tf.constant([0.0, 0.25, 1.0])).numpy()
    np.testing.assert_allclose(x_hat[:, :, :].reshape(3, -1).min(axis=1), [0.0, 0.25, 1.0])
    np.testing.assert_allclose(x_hat.reshape(3, -1).max(axis=1), [0.0, 0.25, 1.0])


def test_penalty_alphas_are_uniform_per_example():
    # A critic 0.5 * sum(x^2) has input gradient x_hat = alpha * ones for real=0, fake=1, so
    # the slope of example i is alpha_i * sqrt(n): the penalty reveals the alpha spread.
    inputs = keras.Input((100, 1))
    square = keras.layers.Lambda(lambda x: 0.5 * keras.ops.sum(keras.ops.square(x), axis=(1, 2)))
    critic = keras.Model(inputs, square(inputs))
    gan = GANTrainer(build_generator(latent_dim=LATENT, model_dim=2), critic,
                  latent_dim=LATENT, seed=4)
    real, fake = tf.zeros((4000, 100, 1)), tf.ones((4000, 100, 1))
    # For alpha ~ U(0,1): E[(10 alpha - 1)^2] = 100/3 - 10 + 1 = 24.33
    assert float(gan._gradient_penalty(real, fake)) == pytest.approx(24.33, rel=0.05)


@pytest.mark.parametrize(
    "loss, real, fake, d_expected, g_expected",
    [
        ("wgan-gp", [1.0, 3.0], [0.0, -2.0], -3.0, 1.0),
        ("wgan", [1.0, 3.0], [0.0, -2.0], -3.0, 1.0),
        ("lsgan", [1.0, 3.0], [0.0, 2.0], (2.0 + 2.0) / 2, (1.0 + 1.0) / 2),
        ("dcgan", [0.0, 0.0], [0.0, 0.0], np.log(2.0), np.log(2.0)),
    ],
)
def test_loss_values(loss, real, fake, d_expected, g_expected):
    real, fake = tf.constant([real]), tf.constant([fake])
    assert float(losses.discriminator_loss(loss, real, fake)) == pytest.approx(d_expected, rel=1e-5)
    assert float(losses.generator_loss(loss, fake)) == pytest.approx(g_expected, rel=1e-5)


@pytest.mark.parametrize(
    "loss, optimizer, learning_rate",
    [("wgan-gp", keras.optimizers.Adam, 1e-4), ("wgan", keras.optimizers.RMSprop, 5e-5),
     ("dcgan", keras.optimizers.Adam, 2e-4), ("lsgan", keras.optimizers.RMSprop, 1e-4)],
)
def test_compile_defaults_to_the_original_optimizers(loss, optimizer, learning_rate):
    gan = _tiny_gan(loss)
    for opt in (gan.g_optimizer, gan.d_optimizer):
        assert type(opt) is optimizer
        assert float(opt.learning_rate) == pytest.approx(learning_rate)
    if loss == "wgan-gp":
        assert float(gan.d_optimizer.beta_1) == 0.5 and float(gan.d_optimizer.beta_2) == 0.9


def test_compile_keeps_given_optimizers():
    gan = GANTrainer(build_generator(latent_dim=LATENT, model_dim=2),
                  build_discriminator(model_dim=2), latent_dim=LATENT)
    g_opt, d_opt = keras.optimizers.SGD(0.1), keras.optimizers.SGD(0.2)
    gan.compile(g_optimizer=g_opt, d_optimizer=d_opt)
    assert gan.g_optimizer is g_opt and gan.d_optimizer is d_opt


@pytest.mark.parametrize("loss", ["wgan-gp", "wgan", "dcgan", "lsgan"])
def test_fit_runs_each_loss_and_updates_both_networks(loss):
    gan = _tiny_gan(loss)
    g_before = [w.copy() for w in gan.generator.get_weights()]
    d_before = [w.copy() for w in gan.discriminator.get_weights()]
    history = gan.fit(_real_dataset(2), steps_per_epoch=2, epochs=1, verbose=0, shuffle=False)
    expected = {"d_loss", "g_loss"}
    expected |= {"wasserstein"} if loss in ("wgan-gp", "wgan") else set()
    expected |= {"gp"} if loss == "wgan-gp" else set()
    assert set(history.history) == expected
    assert all(np.isfinite(v[-1]) for v in history.history.values())
    assert any(not np.array_equal(a, b) for a, b in zip(g_before, gan.generator.get_weights()))
    assert any(not np.array_equal(a, b)
               for a, b in zip(d_before, gan.discriminator.get_weights()))
    assert int(gan.g_optimizer.iterations) == 2
    assert int(gan.d_optimizer.iterations) == 4  # n_critic = 2 critic updates per step


def test_wgan_keeps_every_discriminator_weight_within_the_clip_value():
    gan = _tiny_gan("wgan")
    gan.discriminator.set_weights([w * 0 + 0.5 for w in gan.discriminator.get_weights()])
    gan.fit(_real_dataset(2), steps_per_epoch=2, epochs=1, verbose=0, shuffle=False)
    largest = max(np.abs(w).max() for w in gan.discriminator.get_weights())
    assert largest <= 0.01 + 1e-7
    assert largest == pytest.approx(0.01)


def test_same_seed_gives_identical_weights():
    def run():
        gan = _tiny_gan("wgan-gp", seed=11)
        gan.fit(_real_dataset(2, seed=3), steps_per_epoch=2, epochs=1, verbose=0, shuffle=False)
        return gan.generator.get_weights() + gan.discriminator.get_weights()

    first, second = run(), run()
    for a, b in zip(first, second):
        np.testing.assert_array_equal(a, b)
    other = _tiny_gan("wgan-gp", seed=12).generator.get_weights()
    assert any(not np.array_equal(a, b) for a, b in zip(first, other))


def test_each_critic_update_gets_its_own_real_batch():
    gan = _tiny_gan(n_critic=3)
    stacked = tf.reshape(tf.range(3 * 2 * 4, dtype=tf.float32), (3, 2, 4, 1))
    batches, labels = gan._critic_stacks(stacked)
    assert batches.shape[0] == 3 and labels is None
    for i, batch in enumerate(batches):
        np.testing.assert_array_equal(batch, stacked[i])
    flat, _ = gan._critic_stacks(tf.reshape(stacked, (6, 4, 1)))
    for i, batch in enumerate(flat):
        np.testing.assert_array_equal(batch, stacked[i])


@pytest.mark.parametrize(
    "shape, message",
    [((2, 2, 4, 1), "n_critic=3"), ((4, 4, 1), "divisible by n_critic=3"), ((4, 4), "got shape")],
)
def test_real_batches_of_the_wrong_shape_are_rejected(shape, message):
    gan = _tiny_gan(n_critic=3)
    with pytest.raises(ValueError, match=message):
        gan._critic_stacks(tf.zeros(shape))


def test_sampled_z_is_uniform_in_minus_one_one():
    z = _tiny_gan().sample_z(4000).numpy()
    assert z.shape == (4000, LATENT)
    assert z.min() >= -1.0 and z.max() <= 1.0
    assert z.mean() == pytest.approx(0.0, abs=0.02)
    assert z.var() == pytest.approx(1.0 / 3.0, rel=0.05)


@pytest.mark.parametrize(
    "kwargs, message",
    [({"loss": "softplus"}, "loss='softplus'"), ({"n_critic": 0}, "n_critic=0"),
     ({"gp_weight": -1.0}, "gp_weight=-1.0"), ({"clip_value": 0.0}, "clip_value=0.0"),
     ({"micro_batches": 0}, "micro_batches=0"), ({"micro_batches": 1.5}, "micro_batches=1.5")],
)
def test_bad_trainer_arguments_are_rejected(kwargs, message):
    with pytest.raises(ValueError, match=message):
        GANTrainer(build_generator(latent_dim=LATENT, model_dim=2),
                build_discriminator(model_dim=2), latent_dim=LATENT, **kwargs)


@pytest.mark.parametrize("loss", ["wgan-gp", "wgan", "dcgan", "lsgan"])
def test_micro_batches_give_the_update_of_the_whole_batch(loss):
    def train(micro_batches):
        gan = _tiny_gan(loss, seed=5, micro_batches=micro_batches, optimizers=_sgd())
        history = gan.fit(_real_dataset(2, batch=4, seed=2), steps_per_epoch=2, epochs=1,
                          verbose=0, shuffle=False)
        return gan.generator.get_weights() + gan.discriminator.get_weights(), history.history

    whole, whole_logs = train(1)
    fresh = _tiny_gan(loss, seed=5)
    start = fresh.generator.get_weights() + fresh.discriminator.get_weights()
    assert any(not np.allclose(a, b) for a, b in zip(start, whole))
    for micro_batches in (2, 4):
        split, split_logs = train(micro_batches)
        for a, b in zip(whole, split):
            np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)
        for name, values in whole_logs.items():
            assert split_logs[name][-1] == pytest.approx(values[-1], rel=1e-4, abs=1e-6)


def test_micro_batches_replay_the_phase_shuffle_draws():
    # Without putting the phase-shuffle seeds back, each part would draw its own shifts and
    # the update would differ from the whole batch's: this is what the replay is for.
    gan = _tiny_gan(seed=5, micro_batches=2, optimizers=_sgd())
    states = [layer.seed_generator.state.numpy().copy() for layer in gan.discriminator.layers
              if hasattr(layer, "seed_generator")]
    assert len(states) == 4
    gan.fit(_real_dataset(2, batch=4), steps_per_epoch=1, epochs=1, verbose=0, shuffle=False)
    after = [layer.seed_generator.state.numpy() for layer in gan.discriminator.layers
             if hasattr(layer, "seed_generator")]
    # 2 critic updates x 3 passes (real, fake, penalty) + 1 generator update: 7 draws per
    # layer, as without micro-batches, not 14.
    for before, now in zip(states, after):
        assert int(now[1]) - int(before[1]) == 7


def test_the_graph_critic_loop_matches_eager_unrolled_updates():
    # In a tf.function the n_critic updates run as a tf.while_loop; eagerly they are a Python
    # loop. Both must make the same updates in the same order (z, alpha, shifts included).
    def train(run_eagerly):
        gan = _tiny_gan(n_critic=3, seed=6, optimizers=_sgd())
        gan.compile(g_optimizer=gan.g_optimizer, d_optimizer=gan.d_optimizer,
                    run_eagerly=run_eagerly)
        gan.fit(_real_dataset(3, batch=2, seed=1), steps_per_epoch=2, epochs=1, verbose=0,
                shuffle=False)
        assert int(gan.d_optimizer.iterations) == 6
        return gan.generator.get_weights() + gan.discriminator.get_weights()

    # Graph and eager kernels round differently; a wrong z, alpha or shift would not be close.
    for a, b in zip(train(False), train(True)):
        np.testing.assert_allclose(a, b, rtol=1e-3, atol=1e-5)


def test_a_training_step_holds_no_memory_once_it_has_run():
    # The critic update's summed pass gradients, merged by the graph optimizer into one AddN,
    # became an accumulator whose zero initial value was a graph constant held for the whole
    # run: 97 MiB at d=64 (the optimizer leaves smaller sums alone, so this needs d=64).
    gan = GANTrainer(build_generator(model_dim=64), build_discriminator(model_dim=64), n_critic=2,
                  seed=0)
    gan.compile()
    step = tf.function(gan.train_step)
    before = tf.config.experimental.get_memory_info("CPU:0")["current"]
    step(tf.zeros((2, 1, 16384, 1)))
    held = tf.config.experimental.get_memory_info("CPU:0")["current"] - before
    assert held < 4 * 2**20


def test_micro_batches_must_divide_the_batch():
    gan = _tiny_gan(micro_batches=3)
    with pytest.raises(ValueError, match="micro_batches=3 must divide the batch .* 4 examples"):
        gan.fit(_real_dataset(2, batch=4), steps_per_epoch=1, epochs=1, verbose=0)


def test_gradient_penalty_training_step_compiles_under_xla():
    # The penalty differentiates through phase shuffle twice; every op must have XLA gradients.
    gan = _tiny_gan("wgan-gp")
    gan.compile(jit_compile=True)
    history = gan.fit(_real_dataset(2), steps_per_epoch=1, epochs=1, verbose=0, shuffle=False)
    assert np.isfinite(history.history["gp"][-1])


@pytest.fixture
def policy():
    """Sets a global dtype policy for one test and restores float32 afterwards."""
    def set_policy(name):
        keras.mixed_precision.set_global_policy(name)
    yield set_policy
    keras.mixed_precision.set_global_policy("float32")


def test_mixed_bfloat16_trains_with_float32_audio_and_logits(policy):
    policy("mixed_bfloat16")
    gan = _tiny_gan("wgan-gp")
    assert gan.generator.get_layer("upconv_0").compute_dtype == "bfloat16"
    history = gan.fit(_real_dataset(2), steps_per_epoch=1, epochs=1, verbose=0, shuffle=False)
    assert all(np.isfinite(v[-1]) for v in history.history.values())
    audio = gan.generator(gan.sample_z(2))
    assert audio.dtype == tf.float32
    assert gan.discriminator(audio).dtype == tf.float32


def test_mixed_float16_wraps_optimizers_in_loss_scaling(policy):
    policy("mixed_float16")
    gan = _tiny_gan("wgan")
    assert isinstance(gan.g_optimizer, keras.optimizers.LossScaleOptimizer)
    assert isinstance(gan.d_optimizer, keras.optimizers.LossScaleOptimizer)
    history = gan.fit(_real_dataset(2), steps_per_epoch=1, epochs=1, verbose=0, shuffle=False)
    assert all(np.isfinite(v[-1]) for v in history.history.values())
    assert max(np.abs(w).max() for w in gan.discriminator.get_weights()) <= 0.01 + 1e-3
