"""Differentiable augmentation: each policy's transform, gradients, and its use in training."""

import os
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

from wavegan_tf import GANTrainer, build_discriminator, build_generator
from wavegan_tf.training import augment
from wavegan_tf.training.config import GANConfig

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
T = 16384
TOP = float(np.nextafter(np.float32(1), np.float32(0)))  # the largest uniform draw below 1


def _audio(batch=3, channels=1, seed=0):
    rng = np.random.default_rng(seed)
    return tf.constant(rng.uniform(0.1, 0.9, (batch, T, channels)).astype("float32"))


def _draws(*rows):
    return tf.constant(np.array(rows, np.float32))


def test_no_policies_return_the_clips_unchanged():
    audio = _audio()
    assert augment.apply(audio, _draws(*[[0.3] * 3] * 3), ()) is audio


@pytest.mark.parametrize("policies", [("gain",), ("shift",), ("mask",), augment.POLICIES])
def test_every_policy_keeps_the_shape(policies):
    audio = _audio(batch=4, channels=2)
    draws = augment.sample_draws(4, keras.random.SeedGenerator(3))
    assert draws.shape == (4, augment.NUM_DRAWS)
    assert augment.apply(audio, draws, policies).shape == (4, T, 2)


def test_gain_scales_each_clip_by_plus_minus_six_db():
    audio = _audio()
    out = augment.apply(audio, _draws([0.0, 0, 0], [0.5, 0, 0], [1.0, 0, 0]), ("gain",)).numpy()
    expected = [10 ** (-6 / 20), 1.0, 10 ** (6 / 20)]
    for i, gain in enumerate(expected):
        np.testing.assert_allclose(out[i], audio[i].numpy() * gain, rtol=1e-5)


def test_shift_moves_the_clip_and_fills_with_zeros():
    audio = _audio()
    limit = augment.max_shift(T)
    assert limit == T // 8
    # Column 1 drives the shift: 0 advances by the limit, 0.5 keeps, TOP delays by the limit.
    out = augment.apply(audio, _draws([0, 0.0, 0], [0, 0.5, 0], [0, TOP, 0]),
                        ("shift",)).numpy()
    a = audio.numpy()
    np.testing.assert_array_equal(out[0, :T - limit], a[0, limit:])
    np.testing.assert_array_equal(out[0, T - limit:], 0.0)
    np.testing.assert_array_equal(out[1], a[1])
    np.testing.assert_array_equal(out[2, limit:], a[2, :T - limit])
    np.testing.assert_array_equal(out[2, :limit], 0.0)


def test_mask_zeroes_one_window_of_a_quarter_clip():
    audio = _audio()
    length = augment.mask_length(T)
    assert length == T // 4
    out = augment.apply(audio, _draws([0, 0, 0.0], [0, 0, 0.5], [0, 0, TOP]),
                        ("mask",)).numpy()
    starts = [0, (T - length + 1) // 2, T - length]
    for i, start in enumerate(starts):
        zeroed = np.flatnonzero(out[i, :, 0] == 0.0)
        np.testing.assert_array_equal(zeroed, np.arange(start, start + length))
        kept = np.ones(T, bool)
        kept[start:start + length] = False
        np.testing.assert_array_equal(out[i, kept], audio.numpy()[i, kept])


def test_the_transforms_pass_gradients_to_the_clips():
    audio = _audio()
    draws = _draws([1.0, 0.5, 0.0], [0.5, 0.5, 0.0], [0.0, 0.5, 0.0])
    with tf.GradientTape() as tape:
        tape.watch(audio)
        total = tf.reduce_sum(augment.apply(audio, draws, augment.POLICIES))
    grad = tape.gradient(total, audio).numpy()[:, :, 0]
    length = augment.mask_length(T)
    for i, gain in enumerate([10 ** (6 / 20), 1.0, 10 ** (-6 / 20)]):
        np.testing.assert_allclose(grad[i, length:], gain, rtol=1e-5)
        np.testing.assert_array_equal(grad[i, :length], 0.0)


def test_generator_gets_gradients_through_the_augmentation():
    keras.utils.set_random_seed(0)
    gan = GANTrainer(build_generator(latent_dim=8, model_dim=2), build_discriminator(model_dim=2),
                  latent_dim=8, seed=0, augment=augment.POLICIES)
    z, draws = gan.sample_z(2), gan.sample_augment_draws(2)
    variables = gan.generator.trainable_variables
    with tf.GradientTape() as tape:
        fake = gan.generator(z, training=True)
        logits = gan._discriminate(fake, None, True, draws)
    grads = tape.gradient(logits, variables)
    assert all(g is not None and float(tf.reduce_max(tf.abs(g))) > 0 for g in grads)


def test_without_augmentation_nothing_is_drawn():
    gan = GANTrainer(build_generator(latent_dim=8, model_dim=2), build_discriminator(model_dim=2),
                  latent_dim=8, seed=0)
    state = gan.seed_generator.state.numpy().copy()
    assert gan.augment == () and gan.sample_augment_draws(4) is None
    np.testing.assert_array_equal(gan.seed_generator.state.numpy(), state)


def _augmented_gan(micro_batches):
    keras.utils.set_random_seed(2)
    gan = GANTrainer(build_generator(latent_dim=8, model_dim=2, kernel_len=5),
                  build_discriminator(model_dim=2, kernel_len=5), n_critic=2, latent_dim=8,
                  seed=2, micro_batches=micro_batches, augment=("gain", "shift", "mask"))
    gan.compile(g_optimizer=keras.optimizers.SGD(0.01), d_optimizer=keras.optimizers.SGD(0.01))
    return gan


def test_micro_batches_see_the_augmentation_of_the_whole_batch():
    audio = np.random.default_rng(1).uniform(-0.5, 0.5, (2, 4, T, 1)).astype("float32")
    weights = []
    for parts in (1, 2):
        gan = _augmented_gan(parts)
        gan.fit(tf.data.Dataset.from_tensors(audio), verbose=0, shuffle=False)
        weights.append(gan.generator.get_weights() + gan.discriminator.get_weights())
    for one, two in zip(*weights):
        np.testing.assert_allclose(two, one, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("value, message", [
    ("shift,echo", "augment=['shift', 'echo'] (unknown ['echo'])"),
    (["gain", "gain"], "augment=['gain', 'gain'] (a policy named twice)"),
])
def test_bad_policies_are_named(value, message):
    for check in (lambda: GANConfig(augment=value), lambda: augment.check_policies(value)):
        with pytest.raises(ValueError) as err:
            check()
        assert "augment must list distinct policies out of" in str(err.value)
        assert message in str(err.value)


def test_config_keeps_policies_in_canonical_order_through_json(tmp_path):
    config = GANConfig(augment=["mask", "shift"])
    assert config.augment == ["shift", "mask"]
    config.save(str(tmp_path))
    assert GANConfig.load(str(tmp_path)).augment == ["shift", "mask"]
    assert GANConfig().augment == []


def test_cli_rejects_an_unknown_policy_naming_the_flag(tmp_path):
    proc = subprocess.run([sys.executable, "train.py", "--train_dir", str(tmp_path / "run"),
                           "--augment", "shift,reverb"], capture_output=True, text=True,
                          cwd=REPO, timeout=300)
    assert proc.returncode == 1
    assert "error: augment must list distinct policies out of ['gain', 'shift', 'mask'], got " \
           "augment=['shift', 'reverb'] (unknown ['reverb'])" in proc.stderr
    assert not os.path.exists(tmp_path / "run" / "config.json")
