"""A SpecGAN run end to end: train, previews, moments, resume, export, generation, bad input."""

import json
import os
import shutil
import subprocess
import sys

import keras
import numpy as np
import pytest
import soundfile
import tensorflow as tf

from wavegan_tf.cli import generate_wavs
from wavegan_tf.nets import latent
from wavegan_tf.serving import export, loading
from wavegan_tf import runs
from wavegan_tf.training import settings
from wavegan_tf.training.checkpoints import load_generator, moments_path
from wavegan_tf.training.config import GANConfig
from wavegan_tf.audio.demo_data import ensure_demo_dataset
from wavegan_tf.audio.spectrogram import MOMENTS_FILENAME, SpectrogramMoments

from support import MIRRORED_SCRIPT, tiny_classifier

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY = dict(model="specgan", model_dim=2, batch_size=2, n_critic=2, latent_dim=8,
            griffin_lim_iters=2)


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    return ensure_demo_dataset(str(tmp_path_factory.mktemp("data") / "drums"), num_clips=6)


def _options(data_dir, **values):
    return dict(dict(data_dir=data_dir, train_steps=2, save_every_steps=0, save_every_secs=0,
                     preview_every_steps=1), **values)


@pytest.fixture(scope="module")
def eval_classifier(tmp_path_factory):
    return tiny_classifier(tmp_path_factory.mktemp("clf"))


@pytest.fixture(scope="module")
def first_run(tmp_path_factory, data_dir, eval_classifier):
    train_dir = str(tmp_path_factory.mktemp("specgan") / "run")
    runs.train(train_dir, TINY, _options(data_dir, eval_every_steps=2,
                                         eval_classifier=eval_classifier, eval_n=4),
               verbose=0)
    return train_dir


@pytest.fixture
def run_copy(first_run, tmp_path):
    copy = str(tmp_path / "run")
    shutil.copytree(first_run, copy)
    return copy


def test_a_run_keeps_specgan_defaults_moments_previews_and_export(first_run):
    config = GANConfig.load(first_run)
    assert (config.model, config.kernel_len, config.phase_shuffle) == ("specgan", 5, 0)
    moments = SpectrogramMoments.load(moments_path(first_run))
    assert moments.num_frames > 0 and np.all(moments.std > 0)
    assert sorted(os.listdir(os.path.join(first_run, "previews"))) == ["step_1.wav",
                                                                        "step_2.wav"]
    preview, rate = soundfile.read(os.path.join(first_run, "previews", "step_2.wav"))
    # 8 Griffin-Lim clips of 16384 samples, each followed by 0.5 s of silence.
    assert rate == 16000 and len(preview) == 8 * (16384 + 8000)
    assert np.abs(preview).max() > 0


def test_load_generator_gives_audio_through_the_saved_moments(first_run):
    config, generator, step = load_generator(first_run)
    assert step == 2 and generator.output_shape == (None, 16384, 1)
    saved = SpectrogramMoments.load(moments_path(first_run))
    inner = generator.get_layer("spectrogram_to_audio")
    np.testing.assert_allclose(inner.moments().mean, saved.mean)
    assert inner.griffin_lim_iters == 2


def test_export_serves_z_to_audio_like_wavegan_with_moments_inside(first_run):
    export_dir = os.path.join(first_run, "export")
    loaded = tf.saved_model.load(export_dir)
    out = loaded.signatures["serving_default"](z=tf.random.uniform([3, 8], -1.0, 1.0))
    assert set(out) == {"audio"} and tuple(out["audio"].shape) == (3, 16384, 1)
    assert float(tf.reduce_max(tf.abs(out["audio"]))) <= 1.0
    generated = loaded.signatures["generate"](n=tf.constant(2), seed=tf.constant(1, tf.int64))
    assert tuple(generated["audio"].shape) == (2, 16384, 1)
    metadata = export.read_metadata(export_dir)
    assert metadata["spectrogram_moments"] == MOMENTS_FILENAME
    assert metadata["config"]["model"] == "specgan"
    exported = SpectrogramMoments.load(os.path.join(export_dir, "assets", MOMENTS_FILENAME))
    keras_model = keras.saving.load_model(os.path.join(export_dir, export.KERAS_FILENAME))
    assert keras_model.output_shape == (None, 16384, 1)
    np.testing.assert_allclose(exported.std, SpectrogramMoments.load(moments_path(first_run)).std)


def test_generation_and_scoring_load_the_export_and_the_train_dir_unchanged(first_run, tmp_path):
    for source in (os.path.join(first_run, "export"), first_run):
        model = loading.load_model_for_generation(source)
        audio = model.generate(latent.sample_z(2, 8, seed=0))
        assert audio.shape == (2, 16384, 1), source
    paths = generate_wavs.run_generation(os.path.join(first_run, "export"), str(tmp_path / "out"),
                                         n=2, seed=3)
    assert [soundfile.info(p).frames for p in paths] == [16384, 16384]


def test_eval_every_steps_scores_griffin_lim_audio_and_exports_the_best(first_run):
    with open(os.path.join(first_run, "eval.jsonl"), encoding="utf-8") as f:
        lines = [json.loads(line) for line in f]
    assert [line["step"] for line in lines] == [2] and lines[0]["best"] is True
    best = os.path.join(first_run, "best")
    loaded = tf.saved_model.load(best)
    audio = loaded.signatures["serving_default"](z=tf.zeros([2, 8]))["audio"]
    assert tuple(audio.shape) == (2, 16384, 1)
    np.testing.assert_allclose(
        SpectrogramMoments.load(os.path.join(best, "assets", MOMENTS_FILENAME)).mean,
        SpectrogramMoments.load(moments_path(first_run)).mean)


def test_resume_continues_with_the_saved_moments(run_copy, data_dir):
    before = open(moments_path(run_copy), "rb").read()
    result = runs.train(run_copy, {}, dict(train_steps=3, export=False), verbose=0)
    assert (result.start_step, result.step) == (2, 3)
    assert open(moments_path(run_copy), "rb").read() == before


def test_resume_with_the_other_model_names_the_flag(run_copy):
    with pytest.raises(ValueError, match="model: saved 'specgan', given 'wavegan'"):
        runs.train(run_copy, dict(model="wavegan"), dict(train_steps=3), verbose=0)


def test_resume_without_the_moments_file_is_refused(run_copy):
    os.remove(moments_path(run_copy))
    with pytest.raises(FileNotFoundError, match=MOMENTS_FILENAME):
        runs.train(run_copy, {}, dict(train_steps=3), verbose=0)
    assert not os.path.exists(moments_path(run_copy))


def test_a_moments_file_that_does_not_match_is_named(run_copy):
    path = moments_path(run_copy)
    values = json.load(open(path, encoding="utf-8"))
    values["mean"] = values["mean"][:100]
    json.dump(values, open(path, "w", encoding="utf-8"))
    with pytest.raises(ValueError, match=f"{MOMENTS_FILENAME}.*does not match"):
        runs.train(run_copy, {}, dict(train_steps=3), verbose=0)
    with pytest.raises(ValueError, match=MOMENTS_FILENAME):
        load_generator(run_copy)


def test_mirrored_over_two_devices_trains_on_spectrograms(tmp_path, data_dir):
    train_dir = str(tmp_path / "run")
    proc = subprocess.run(
        [sys.executable, "-c", MIRRORED_SCRIPT, train_dir, json.dumps(dict(TINY, batch_size=4)),
         json.dumps(_options(data_dir, train_steps=1, export=False))],
        capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.split("RESULT", 1)[1])
    assert (result["replicas"], result["step"]) == (2, 1)
    assert os.path.exists(moments_path(train_dir))


@pytest.mark.parametrize("values, message", [
    (dict(slice_len=32768), "model='specgan' needs slice_len=16384"),
    (dict(num_channels=2), "needs num_channels=1"),
    (dict(phase_shuffle=2), "needs phase_shuffle=0"),
    (dict(post_proc_filt_len=16), "needs post_proc_filt_len=0"),
    (dict(conditional=True), "needs conditional=False"),
    (dict(griffin_lim_iters=0), "griffin_lim_iters=0"),
    (dict(model="melgan"), "model must be one of"),
])
def test_settings_specgan_does_not_support_are_named(tmp_path, values, message):
    with pytest.raises(ValueError, match=message):
        settings.resolve_run(str(tmp_path), dict(TINY, **values))


def test_train_py_refuses_an_unsupported_slice_length(tmp_path, data_dir):
    proc = subprocess.run(
        [sys.executable, os.path.join(ROOT, "train.py"), "--model=specgan", "--slice_len=65536",
         f"--data_dir={data_dir}", f"--train_dir={tmp_path / 'run'}"],
        capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert proc.returncode == 1
    assert "error: model='specgan' needs slice_len=16384" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not os.path.exists(tmp_path / "run" / "config.json")
