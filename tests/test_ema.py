"""Generator weight averaging: the update, checkpoints, resume, and what previews, the
in-training evaluation and the exports are made of."""

import json
import os
import shutil
import subprocess
import sys

import keras
import numpy as np
import pytest
import soundfile as sf
import tensorflow as tf

from wavegan_tf import GANTrainer, build_discriminator, build_generator
from wavegan_tf import runs
from wavegan_tf.training import checkpoints
from wavegan_tf.training.config import GANConfig
from wavegan_tf.audio.demo_data import ensure_demo_dataset
from wavegan_tf.eval import classifier as classifier_lib
from wavegan_tf.training.previews import preview_path, preview_z_path

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY = dict(model_dim=2, batch_size=2, n_critic=1, latent_dim=8, kernel_len=5)
DECAY = 0.9


def _decay(updates, ema_decay=DECAY):
    return min(ema_decay, (1 + updates) / (10 + updates))


def test_the_average_follows_the_formula_and_copies_batch_norm_statistics():
    keras.utils.set_random_seed(0)
    gan = GANTrainer(build_generator(latent_dim=8, model_dim=2, kernel_len=5, use_batchnorm=True),
                  build_discriminator(model_dim=2, kernel_len=5), n_critic=1, latent_dim=8,
                  seed=0, ema_decay=0.2)
    gan.compile(g_optimizer=keras.optimizers.SGD(0.05), d_optimizer=keras.optimizers.SGD(0.01))
    assert gan.sampling_generator is gan.ema_generator and not gan.ema_generator.trainable
    trainable = [w.trainable for w in gan.generator.weights]
    assert any(trainable) and not all(trainable)
    average = [w.numpy() for w in gan.generator.weights]
    audio = np.random.default_rng(0).uniform(-0.5, 0.5, (1, 2, 16384, 1)).astype("float32")
    for n in (1, 2, 3):
        gan.fit(tf.data.Dataset.from_tensors(audio), verbose=0, shuffle=False)
        decay = min(0.2, (1 + n) / (10 + n))  # 2/11 at n=1, then 0.2
        weights = [w.numpy() for w in gan.generator.weights]
        average = [decay * a + (1 - decay) * w if t else w
                   for a, w, t in zip(average, weights, trainable)]
        for expected, got, w in zip(average, gan.ema_generator.weights, weights):
            np.testing.assert_allclose(got.numpy(), expected, rtol=1e-5, atol=1e-7)
        assert any(not np.allclose(a.numpy(), w.numpy())
                   for a, w in zip(gan.ema_generator.weights, gan.generator.weights))
    assert float(gan.average_decay(1)) == pytest.approx(2 / 11)
    assert float(gan.average_decay(10 ** 6)) == pytest.approx(0.2)


def test_averaging_is_off_by_default():
    assert GANConfig().ema_decay == 0.0
    gan = GANConfig(**TINY).build_gan()
    assert gan.ema_generator is None and gan.sampling_generator is gan.generator
    assert checkpoints.AVERAGE_NAME not in checkpoints.make_checkpoint(
        gan, tf.Variable(0, dtype=tf.int64))._trackable_children()


@pytest.mark.parametrize("value", [1.0, -0.1, 1.5])
def test_bad_decays_are_named(value):
    with pytest.raises(ValueError, match=f"ema_decay must be 0 .* got ema_decay={value!r}"):
        GANConfig(ema_decay=value)


def test_checkpoints_round_trip_both_generators(tmp_path):
    source = GANConfig(**TINY, ema_decay=DECAY).build_gan()
    for average in source.ema_generator.weights:
        average.assign(average + 1.0)
    path = checkpoints.make_checkpoint(source, tf.Variable(5, dtype=tf.int64)).save(
        str(tmp_path / "ckpt"))
    assert checkpoints.holds_average(path)
    keras.utils.set_random_seed(7)
    fresh = GANConfig(**TINY, ema_decay=DECAY, seed=7).build_gan()
    checkpoints.make_checkpoint(fresh, tf.Variable(0, dtype=tf.int64)).restore(
        path).assert_existing_objects_matched()
    for name in ("generator", "ema_generator"):
        for a, b in zip(getattr(source, name).weights, getattr(fresh, name).weights):
            np.testing.assert_array_equal(a.numpy(), b.numpy())


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    return ensure_demo_dataset(str(tmp_path_factory.mktemp("data") / "drums"), num_clips=8)


@pytest.fixture(scope="module")
def averaged_run(tmp_path_factory, data_dir):
    """A 3-step run with averaging, scored, previewed and exported at step 3."""
    keras.utils.set_random_seed(1)
    clf_path = str(tmp_path_factory.mktemp("clf") / "classifier.keras")
    classifier_lib.save_classifier(classifier_lib.build_classifier(3, filters=4), clf_path,
                                   ["a", "b", "c"])
    train_dir = str(tmp_path_factory.mktemp("runs") / "run")
    runs.train(train_dir, dict(TINY, ema_decay=DECAY), dict(
        data_dir=data_dir, train_steps=3, save_every_steps=0, save_every_secs=0,
        preview_every_steps=3, eval_every_steps=3, eval_classifier=clf_path, eval_n=4),
        verbose=0)
    return train_dir


def _generator_weights(train_dir, averaged):
    return checkpoints.load_generator(train_dir, averaged=averaged)[1].get_weights()


def _assert_same(a, b):
    assert len(a) == len(b)
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)


def _differ(a, b):
    return any(not np.array_equal(x, y) for x, y in zip(a, b))


def test_previews_evaluation_and_exports_are_of_the_average(averaged_run):
    average = _generator_weights(averaged_run, averaged=True)
    raw = _generator_weights(averaged_run, averaged=False)
    assert _differ(average, raw)
    for folder in ("export", "best"):
        model = keras.saving.load_model(os.path.join(averaged_run, folder, "generator.keras"))
        _assert_same(model.get_weights(), average)
    generator = GANConfig.load(averaged_run).build_generator()
    generator.set_weights(average)
    clips = np.clip(generator(np.load(preview_z_path(averaged_run))).numpy(), -1, 1)
    wav, _ = sf.read(preview_path(averaged_run, 3), dtype="float32")
    first = wav[:16384]
    np.testing.assert_allclose(first, clips[0, :, 0], atol=2 / 32768)


def _continue(run, tmp_path, config_values, steps=4):
    train_dir = str(tmp_path / "run")
    shutil.copytree(run, train_dir)
    runs.train(train_dir, config_values, {"train_steps": steps, "export": False,
                                          "eval_every_steps": 0, "preview_every_steps": 0},
               verbose=0)
    return train_dir


def _ckpt_generators(train_dir, step):
    """(G, averaged G or None) weights of ckpt-<step>, restored into fresh models."""
    path = os.path.join(checkpoints.checkpoint_dir(train_dir), f"ckpt-{step}")
    config = GANConfig.load(train_dir)
    raw, average = config.build_generator(), config.build_generator()
    names = dict(generator=raw)
    if checkpoints.holds_average(path):
        names[checkpoints.AVERAGE_NAME] = average
    tf.train.Checkpoint(**names).restore(path).expect_partial()
    return raw.get_weights(), (average.get_weights() if len(names) == 2 else None)


def test_resume_keeps_the_average_and_continues_it(averaged_run, tmp_path):
    train_dir = _continue(averaged_run, tmp_path, {})
    g3, avg3 = _ckpt_generators(train_dir, 3)
    g4, avg4 = _ckpt_generators(train_dir, 4)
    decay = _decay(4)
    for expected, got in zip([decay * a + (1 - decay) * g for a, g in zip(avg3, g4)], avg4):
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-7)
    assert _differ(g3, g4)


def test_averaging_turned_off_on_resume_drops_the_average(averaged_run, tmp_path):
    train_dir = _continue(averaged_run, tmp_path, {"ema_decay": 0.0})
    g4, avg4 = _ckpt_generators(train_dir, 4)
    assert avg4 is None
    _assert_same(_generator_weights(train_dir, averaged=True), g4)


def test_averaging_turned_on_on_resume_starts_from_the_restored_generator(data_dir, tmp_path):
    plain = str(tmp_path / "plain")
    runs.train(plain, TINY, dict(data_dir=data_dir, train_steps=2, save_every_secs=0,
                                 preview_every_steps=0, export=False), verbose=0)
    train_dir = _continue(plain, tmp_path, {"ema_decay": DECAY}, steps=3)
    g2, none = _ckpt_generators(train_dir, 2)
    g3, avg3 = _ckpt_generators(train_dir, 3)
    assert none is None
    decay = _decay(3)
    for expected, got in zip([decay * a + (1 - decay) * g for a, g in zip(g2, g3)], avg3):
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-7)
    with open(os.path.join(train_dir, "config.json")) as f:
        assert json.load(f)["ema_decay"] == DECAY


def test_cli_flags_reach_the_run(data_dir, tmp_path):
    train_dir = str(tmp_path / "run")
    proc = subprocess.run(
        [sys.executable, "train.py", "--train_dir", train_dir, "--data_dir", data_dir,
         "--model_dim", "2", "--batch_size", "2", "--n_critic", "1", "--latent_dim", "8",
         "--kernel_len", "5", "--train_steps", "1", "--noexport", "--ema_decay", "0.99",
         "--augment", "mask,shift"], capture_output=True, text=True, cwd=REPO, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    config = GANConfig.load(train_dir)
    assert (config.ema_decay, config.augment) == (0.99, ["shift", "mask"])
    assert checkpoints.holds_average(checkpoints.latest_checkpoint(train_dir))
