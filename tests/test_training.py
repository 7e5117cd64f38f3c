"""The training loop: run layout, resume, conflicts, divergence, determinism, callbacks."""

import glob
import json
import os
import shutil

import keras
import numpy as np
import pytest
import soundfile as sf
import tensorflow as tf
from tensorboard.backend.event_processing import event_accumulator

from wavegan_tf import runs
from wavegan_tf.training import callbacks, checkpoints, loop, saver, settings
from wavegan_tf.training.config import GANConfig
from wavegan_tf.audio.demo_data import ensure_demo_dataset
from wavegan_tf.training.previews import NUM_PREVIEW_CLIPS, preview_path, preview_z_path

TINY = dict(model_dim=2, batch_size=2, n_critic=1, latent_dim=8, kernel_len=5)
SLICE = 16384
GAP = 8000  # 0.5 s of silence after each preview clip at 16 kHz


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    return ensure_demo_dataset(str(tmp_path_factory.mktemp("data") / "drums"), num_clips=8)


def _options(data_dir, **values):
    return dict(dict(data_dir=data_dir, train_steps=3, save_every_steps=2, save_every_secs=0,
                     preview_every_steps=2), **values)


@pytest.fixture(scope="module")
def first_run(tmp_path_factory, data_dir):
    """A run trained for 3 steps (checkpoints at 2 and 3), before anything resumes it."""
    train_dir = str(tmp_path_factory.mktemp("runs") / "run")
    result = runs.train(train_dir, TINY, _options(data_dir), verbose=0)
    snapshot = str(tmp_path_factory.mktemp("snapshot") / "run")
    shutil.copytree(train_dir, snapshot)
    return snapshot, result


@pytest.fixture
def run_copy(first_run, tmp_path):
    """A private copy of the 3-step run, for tests that continue it."""
    path = str(tmp_path / "run")
    shutil.copytree(first_run[0], path)
    return path


def _ckpt(train_dir, step):
    return tf.train.load_checkpoint(os.path.join(checkpoints.checkpoint_dir(train_dir),
                                                 f"ckpt-{step}"))


def _ckpt_value(train_dir, step, name):
    reader = _ckpt(train_dir, step)
    keys = [k for k in reader.get_variable_to_shape_map() if k.startswith(name)]
    assert len(keys) == 1, keys
    return reader.get_tensor(keys[0])


def _weights(train_dir, step):
    """G's and D's trainable weights in a checkpoint (stored under their optimizers' names)."""
    reader = _ckpt(train_dir, step)
    weights = {k: reader.get_tensor(k) for k in reader.get_variable_to_shape_map()
               if "/_trainable_variables/" in k}
    assert len(weights) > 20
    return weights


def _events(train_dir):
    acc = event_accumulator.EventAccumulator(os.path.join(train_dir, loop.LOGS_SUBDIR),
                                             size_guidance={"tensors": 0})
    acc.Reload()
    return acc


def test_a_run_leaves_config_checkpoints_previews_logs_and_export(first_run, data_dir):
    train_dir, result = first_run
    assert (result.start_step, result.step, result.interrupted_by) == (0, 3, None)
    assert GANConfig.load(train_dir) == GANConfig(**TINY)
    assert settings.TrainingOptions.load(train_dir) == settings.TrainingOptions(
        **_options(os.path.abspath(data_dir)))
    assert os.path.basename(checkpoints.latest_checkpoint(train_dir)) == "ckpt-3"
    assert int(_ckpt_value(train_dir, 3, "step/")) == 3
    assert int(_ckpt_value(train_dir, 2, "step/")) == 2
    for step in (2, 3):
        audio, rate = sf.read(preview_path(train_dir, step))
        info = sf.info(preview_path(train_dir, step))
        assert (rate, info.subtype, audio.shape) == (16000, "PCM_16",
                                                     (NUM_PREVIEW_CLIPS * (SLICE + GAP),))
    assert sorted(os.listdir(os.path.join(train_dir, "previews"))) == ["step_2.wav",
                                                                       "step_3.wav"]
    assert os.path.isfile(os.path.join(result.export_dir, "saved_model.pb"))
    assert os.path.basename(result.export_dir) == "export"


def test_tensorboard_has_per_step_losses_and_preview_audio(first_run):
    events = _events(first_run[0])
    tags = events.Tags()["tensors"]
    for name in ("d_loss", "g_loss", "wasserstein", "gp", "generated", "real"):
        assert name in tags
    for name in ("d_loss", "g_loss", "wasserstein", "gp"):
        values = events.Tensors(name)
        assert [e.step for e in values] == [1, 2, 3]
        assert all(np.isfinite(tf.make_ndarray(e.tensor_proto)) for e in values)
    assert [e.step for e in events.Tensors("generated")] == [2, 3]


def test_tensorboard_has_a_spectrogram_image_of_every_preview_clip(first_run):
    events = _events(first_run[0])
    assert [e.step for e in events.Tensors("generated_spectrogram")] == [2, 3]
    # The preview clips, and as many real clips as a batch holds.
    for tag, count in (("generated_spectrogram", NUM_PREVIEW_CLIPS),
                       ("real_spectrogram", TINY["batch_size"])):
        # An image summary is [width, height, PNG of each clip ...].
        summary = tf.make_ndarray(events.Tensors(tag)[-1].tensor_proto)
        images = [tf.io.decode_png(png).numpy() for png in summary[2:]]
        assert len(images) == count, tag
        assert (int(summary[0]), int(summary[1])) == (SLICE // 128 + 1, 128)
        assert all(image.shape == (128, SLICE // 128 + 1, 3) for image in images), tag
        assert all(image.std() > 0 for image in images), tag


def test_resume_continues_the_step_count_rng_and_optimizer_state(run_copy, data_dir):
    z_before = np.load(preview_z_path(run_copy))
    result = runs.train(run_copy, {}, dict(train_steps=5), verbose=0)
    assert (result.start_step, result.step) == (3, 5)
    assert os.path.basename(result.checkpoint) == "ckpt-5"
    np.testing.assert_array_equal(np.load(preview_z_path(run_copy)), z_before)
    # The seed generator's counter moves by the same amount every step: a resumed run that
    # restored it is two steps past step 3, one that restarted it would be behind step 3.
    seed = {step: _ckpt_value(run_copy, step, "seed_state/") for step in (2, 3, 5)}
    np.testing.assert_array_equal(seed[5] - seed[3], 2 * (seed[3] - seed[2]))
    assert int(_ckpt_value(run_copy, 5, "g_optimizer/_iterations")) == 5
    assert int(_ckpt_value(run_copy, 5, "step/")) == 5
    assert [e.step for e in _events(run_copy).Tensors("d_loss")][-2:] == [4, 5]


def test_resume_at_train_steps_trains_nothing(run_copy):
    before = _weights(run_copy, 3)
    result = runs.train(run_copy, {}, dict(export=False), verbose=0)
    assert (result.start_step, result.step) == (3, 3)
    after = _weights(run_copy, 3)
    assert all(np.array_equal(before[k], after[k]) for k in before)


def test_resume_with_a_different_architecture_or_seed_names_field_and_values(run_copy):
    with pytest.raises(ValueError) as err:
        settings.resolve_run(run_copy, dict(model_dim=4, seed=7, batch_size=2))
    message = str(err.value)
    assert "model_dim: saved 2, given 4" in message
    assert "seed: saved 0, given 7" in message
    assert "batch_size" not in message


def test_resume_applies_only_the_given_values_on_top_of_the_saved_run(run_copy):
    config, options = settings.resolve_run(
        run_copy, dict(model_dim=2, n_critic=3, d_learning_rate=1e-3), dict(train_steps=9))
    assert config == GANConfig(**dict(TINY, n_critic=3, d_learning_rate=1e-3))
    assert options.train_steps == 9
    assert options.preview_every_steps == 2


def test_new_run_uses_defaults_plus_given_values(tmp_path):
    config, options = settings.resolve_run(str(tmp_path / "new"), dict(model_dim=8))
    assert config == GANConfig(model_dim=8)
    assert options == settings.TrainingOptions()


@pytest.mark.parametrize("values, message", [
    (dict(keep_checkpoints=0), "keep_checkpoints"),
    (dict(train_steps=-1), "train_steps"),
    (dict(save_every_secs=-1.0), "save_every_secs"),
    (dict(trian_steps=3), "trian_steps"),
])
def test_bad_options_are_named(tmp_path, values, message):
    with pytest.raises(ValueError, match=message):
        settings.resolve_run(str(tmp_path), {}, values)


def test_nan_loss_stops_and_keeps_the_last_good_checkpoint(run_copy):
    with pytest.raises(callbacks.TrainingDiverged) as err:
        runs.train(run_copy, dict(d_learning_rate=1e30),
                   dict(train_steps=10, save_every_steps=1, preview_every_steps=1),
                   verbose=0)
    message = str(err.value)
    assert "diverged" in message and "not saved" in message
    assert "step 3" in message and "ckpt-3" in message
    assert os.path.basename(checkpoints.latest_checkpoint(run_copy)) == "ckpt-3"
    weights = _weights(run_copy, 3)
    assert all(np.all(np.isfinite(w)) for w in weights.values())
    assert not os.path.exists(preview_path(run_copy, 4))


def test_learning_rate_given_on_resume_replaces_the_checkpointed_one(run_copy):
    runs.train(run_copy, dict(g_learning_rate=3e-3), dict(train_steps=4, export=False),
               verbose=0)
    assert _ckpt_value(run_copy, 4, "g_optimizer/_learning_rate") == pytest.approx(3e-3)
    assert _ckpt_value(run_copy, 4, "d_optimizer/_learning_rate") == pytest.approx(1e-4)


def test_the_same_seed_gives_the_same_weights(tmp_path, data_dir, first_run):
    weights = []
    for name in ("a", "b"):
        train_dir = str(tmp_path / name)
        runs.train(train_dir, dict(TINY, seed=3), _options(data_dir, train_steps=2,
                                                           export=False), verbose=0)
        weights.append(_weights(train_dir, 2))
    other_seed = _weights(first_run[0], 2)
    assert weights[0].keys() == weights[1].keys() == other_seed.keys()
    assert all(np.array_equal(weights[0][k], weights[1][k]) for k in weights[0])
    assert not all(np.array_equal(weights[0][k], other_seed[k]) for k in weights[0])


def test_keep_checkpoints_and_save_every_secs(tmp_path, data_dir):
    train_dir = str(tmp_path / "run")
    runs.train(train_dir, TINY, _options(data_dir, train_steps=4, save_every_steps=0,
                                         save_every_secs=1e-9, keep_checkpoints=2,
                                         preview_every_steps=0, export=False), verbose=0)
    names = sorted(os.path.basename(p) for p in glob.glob(
        os.path.join(checkpoints.checkpoint_dir(train_dir), "*.index")))
    assert names == ["ckpt-3.index", "ckpt-4.index"]
    assert os.listdir(os.path.join(train_dir, "previews")) == ["step_4.wav"]
    assert not os.path.exists(os.path.join(train_dir, "export"))


def test_unwritable_train_dir_is_a_clear_error(tmp_path, data_dir):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(OSError, match="cannot write to train_dir"):
        runs.train(str(blocker / "run"), TINY, _options(data_dir), verbose=0)


def test_missing_data_dir_is_the_data_modules_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere"):
        runs.train(str(tmp_path / "run"), TINY, dict(data_dir=str(tmp_path / "nowhere")),
                   verbose=0)


def test_without_data_dir_a_run_trains_on_the_demo_dataset(tmp_path, monkeypatch):
    monkeypatch.setattr(settings, "DEMO_DATA_DIR", str(tmp_path / "demo"))
    train_dir = str(tmp_path / "run")
    runs.train(train_dir, TINY, dict(train_steps=1, export=False), verbose=0)
    assert settings.TrainingOptions.load(train_dir).data_dir == str(tmp_path / "demo")
    assert len(glob.glob(os.path.join(tmp_path, "demo", "*", "*.wav"))) == 400


def test_default_train_dir_is_a_timestamp_under_runs():
    path = settings.default_train_dir()
    assert os.path.dirname(path) == "runs"
    assert len(os.path.basename(path)) == len("20260101-120000")


# The hooks the loop is given.

@pytest.mark.parametrize("values, message", [
    (dict(eval_every_steps=2, eval_classifier="c.keras"), "no evaluation was given"),
    (dict(export=True), "no export was given"),
])
def test_the_loop_refuses_options_whose_hook_is_missing(tmp_path, data_dir, values, message):
    options = _options(data_dir, **dict(dict(export=False), **values))
    with pytest.raises(ValueError, match=message):
        loop.train(str(tmp_path / "run"), TINY, options, verbose=0)
    assert not os.path.exists(tmp_path / "run")


def test_the_loop_runs_its_hooks_and_a_callback_may_end_the_run(tmp_path, data_dir):
    seen, scored, exported = [], [], []

    class StopAtTwo(keras.callbacks.Callback):
        def __init__(self, run):
            super().__init__()
            self.run = run

        def on_train_batch_end(self, batch, logs=None):
            if int(self.run.step.numpy()) == 2:
                self.model.stop_training = True

    def evaluation(run):
        seen.append(run)
        return scored.append

    def export(train_dir):
        exported.append(train_dir)
        return os.path.join(train_dir, "elsewhere")

    train_dir = str(tmp_path / "run")
    result = loop.train(train_dir, TINY, _options(data_dir, train_steps=5, eval_every_steps=1,
                                                  eval_classifier="unused.keras", export=True),
                        verbose=0, evaluation=evaluation, export=export, callbacks=[StopAtTwo])
    run = seen[0]
    assert (run.train_dir, run.config.model_dim, run.options.train_steps) == (train_dir, 2, 5)
    assert run.audio_generator is run.gan.sampling_generator and run.writer is not None
    assert scored == [1, 2] and result.step == 2 and result.interrupted_by is None
    assert exported == [train_dir] and result.export_dir == os.path.join(train_dir, "elsewhere")
    assert os.path.basename(result.checkpoint) == "ckpt-2"
    assert os.path.exists(preview_path(train_dir, 2))


# Callbacks on their own.

class _MetricsModel:
    def __init__(self):
        self.metrics = [keras.metrics.Mean(name="d_loss"), keras.metrics.Mean(name="g_loss")]
        self.stop_training = False


def test_scalar_summaries_write_each_steps_own_mean(tmp_path):
    model = _MetricsModel()
    step = tf.Variable(0, dtype=tf.int64)
    writer = tf.summary.create_file_writer(str(tmp_path / "logs"))
    callback = callbacks.ScalarSummaries(writer, step)
    callback.set_model(model)
    callback.on_epoch_begin(0)
    for d_values, g_value in (([1.0, 3.0], 10.0), ([5.0, 7.0], 20.0)):
        for value in d_values:
            model.metrics[0].update_state(value)
        model.metrics[1].update_state(g_value)
        step.assign_add(1)
        callback.on_train_batch_end(0, {})
    writer.close()
    acc = event_accumulator.EventAccumulator(str(tmp_path / "logs"))
    acc.Reload()
    got = {tag: [(e.step, float(tf.make_ndarray(e.tensor_proto))) for e in acc.Tensors(tag)]
           for tag in ("d_loss", "g_loss")}
    assert got == {"d_loss": [(1, 2.0), (2, 6.0)], "g_loss": [(1, 10.0), (2, 20.0)]}


def test_non_finite_loss_check_names_the_metric_and_step():
    check = callbacks.NonFiniteLossCheck(tf.Variable(6, dtype=tf.int64))
    check.on_train_batch_end(0, {"d_loss": 1.0, "g_loss": 2.0})
    with pytest.raises(callbacks.TrainingDiverged, match="g_loss is nan at step 7"):
        check.on_train_batch_end(0, {"d_loss": 1.0, "g_loss": float("nan")})


def test_every_n_steps_fires_on_multiples():
    step = tf.Variable(0, dtype=tf.int64)
    calls = []
    callback = callbacks.EveryNSteps(step, calls.append, every=3)
    callback.on_train_begin()
    for _ in range(7):
        step.assign_add(1)
        callback.on_train_batch_end(0, {})
    assert calls == [3, 6]


def test_throughput_adds_iterations_per_second():
    callback = callbacks.Throughput()
    callback.on_epoch_begin(0)
    logs = [{}, {}]
    callback.on_train_batch_end(0, logs[0])
    callback.on_train_batch_end(1, logs[1])
    assert all(entry["it/s"] > 0 for entry in logs)


def test_stop_signals_record_the_signal_and_restore_handlers():
    import signal

    before = signal.getsignal(signal.SIGTERM)
    with saver.StopSignals() as stop:
        os.kill(os.getpid(), signal.SIGTERM)
        assert stop.signum == signal.SIGTERM
    assert signal.getsignal(signal.SIGTERM) is before


def test_training_json_round_trips(tmp_path):
    options = settings.TrainingOptions(data_dir="/x", train_steps=7, export=False)
    options.save(str(tmp_path))
    assert settings.TrainingOptions.load(str(tmp_path)) == options
    assert json.loads((tmp_path / settings.OPTIONS_FILENAME).read_text())["train_steps"] == 7
