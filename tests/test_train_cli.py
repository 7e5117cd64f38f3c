"""train.py as a user runs it: flags, --help, errors, resume, SIGINT, NaN exit status."""

import dataclasses
import json
import os
import re
import signal
import subprocess
import sys
import time
from xml.etree import ElementTree

import numpy as np
import pytest

from wavegan_tf import runs
from wavegan_tf.training import settings
from wavegan_tf.training.checkpoints import latest_checkpoint, load_generator
from wavegan_tf.training.config import GANConfig
from wavegan_tf.audio.demo_data import ensure_demo_dataset

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TRAIN_PY = os.path.join(ROOT, "train.py")
# The module that defines train.py's flags and main (train.py is a shim that runs it).
CLI_MODULE = "wavegan_tf.cli.train"
TINY = ["--model_dim=2", "--batch_size=2", "--n_critic=1", "--latent_dim=8", "--kernel_len=5"]


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    return ensure_demo_dataset(str(tmp_path_factory.mktemp("data") / "drums"), num_clips=8)


def _train(*args, check=None):
    proc = subprocess.run([sys.executable, TRAIN_PY, *args], capture_output=True, text=True,
                          cwd=ROOT, timeout=300)
    if check is not None:
        assert proc.returncode == check, proc.stdout + proc.stderr
    return proc


def _defined_flags():
    """``{name: (meaning, default)}`` of the flags train.py defines (from --helpxml)."""
    root = ElementTree.fromstring(_train("--helpxml", check=0).stdout)
    return {flag.findtext("name"): (flag.findtext("meaning"), flag.findtext("default"))
            for flag in root.iter("flag") if flag.findtext("file") == CLI_MODULE}


def test_help_documents_every_flag():
    names = _defined_flags()
    out = _train("--help", check=0).stdout
    assert f"{TRAIN_PY}:" in out and "Trains a WaveGAN" in out
    for name in names:
        entry = re.search(rf"--(\[no\])?{name}: (.+)", out)
        assert entry and len(entry.group(2)) > 10, name


def test_every_flag_sets_a_config_or_option_field_with_its_default():
    flags = _defined_flags()
    config = GANConfig().to_dict()
    options = dataclasses.asdict(settings.TrainingOptions())
    assert set(flags) == {"train_dir", "recipe"} | set(config) | set(options)
    for name, value in {**config, **options}.items():
        if value is not None:
            expected = str(value).lower() if isinstance(value, bool) else str(value)
            if isinstance(value, list):  # a list flag shows its default comma-separated
                expected = ",".join(value)
            assert flags[name][1] in (expected, repr(value)), name


def test_flags_reach_the_run_then_resume_uses_the_saved_settings(tmp_path, data_dir):
    train_dir = str(tmp_path / "run")
    given = dict(slice_len=16384, sample_rate=8000, num_channels=2, model_dim=2, latent_dim=6,
                 kernel_len=5, phase_shuffle=0, upsample="nearest", post_proc_filt_len=16,
                 batchnorm=True, loss="lsgan", n_critic=2, batch_size=3, gp_weight=5.0,
                 clip_value=0.5, g_learning_rate=2e-4, d_learning_rate=3e-4, seed=11)
    flags = [f"--{k}={v}" for k, v in given.items() if k != "batchnorm"] + ["--batchnorm"]
    proc = _train(*flags, f"--data_dir={data_dir}", f"--train_dir={train_dir}",
                  "--train_steps=1", "--save_every_steps=0", "--save_every_secs=0",
                  "--preview_every_steps=0", "--keep_checkpoints=1", "--noexport", check=0)
    assert f"train_dir: {train_dir}" in proc.stdout
    assert GANConfig.load(train_dir) == GANConfig(**given)
    assert json.load(open(os.path.join(train_dir, "training.json"))) == dataclasses.asdict(
        settings.TrainingOptions(data_dir=data_dir, train_steps=1, save_every_steps=0,
                                 save_every_secs=0.0, preview_every_steps=0,
                                 keep_checkpoints=1, export=False))
    config, generator, step = load_generator(train_dir)
    assert step == 1 and generator.output_shape == (None, 16384, 2)
    assert not os.path.exists(os.path.join(train_dir, "export"))

    _train(f"--train_dir={train_dir}", "--train_steps=2", check=0)
    assert GANConfig.load(train_dir) == GANConfig(**given)
    assert os.path.basename(latest_checkpoint(train_dir)) == "ckpt-2"
    assert os.listdir(os.path.join(train_dir, "checkpoints")).count("ckpt-1.index") == 0
    assert sorted(os.listdir(os.path.join(train_dir, "previews"))) == ["step_1.wav",
                                                                       "step_2.wav"]

    proc = _train(f"--train_dir={train_dir}", "--model_dim=4", "--upsample=zeros", check=1)
    assert "error:" in proc.stderr and "Traceback" not in proc.stderr
    assert "model_dim: saved 2, given 4" in proc.stderr
    assert "upsample: saved 'nearest', given 'zeros'" in proc.stderr


def test_sigint_saves_a_checkpoint_and_exits_130(tmp_path, data_dir):
    train_dir = str(tmp_path / "run")
    proc = subprocess.Popen(
        [sys.executable, TRAIN_PY, *TINY, f"--data_dir={data_dir}", f"--train_dir={train_dir}",
         "--train_steps=100000", "--save_every_steps=1", "--preview_every_steps=0"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.time() + 120
        while latest_checkpoint(train_dir) is None and proc.poll() is None:
            assert time.time() < deadline, "no checkpoint appeared"
            time.sleep(0.2)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode == 130, out + err
    assert "SIGINT received" in err and "Stopped by SIGINT" in err
    assert "Traceback" not in err
    config, generator, step = load_generator(train_dir)
    assert 1 <= step < 100000
    audio = generator(np.zeros((1, config.latent_dim), np.float32)).numpy()
    assert np.all(np.isfinite(audio))
    assert os.path.isfile(os.path.join(train_dir, "previews", f"step_{step}.wav"))
    assert not os.path.exists(os.path.join(train_dir, "export"))


def test_errors_are_one_line_without_traceback(tmp_path, data_dir):
    missing = _train(f"--data_dir={tmp_path / 'nowhere'}", f"--train_dir={tmp_path / 'a'}",
                     check=1)
    assert "error:" in missing.stderr and "nowhere" in missing.stderr
    blocker = tmp_path / "file"
    blocker.write_text("")
    unwritable = _train(f"--data_dir={data_dir}", f"--train_dir={blocker / 'run'}", check=1)
    assert "error: cannot write to train_dir" in unwritable.stderr
    for proc in (missing, unwritable):
        assert "Traceback" not in proc.stderr


def test_a_run_that_fails_before_its_data_loads_does_not_pin_its_settings(tmp_path, data_dir):
    train_dir = tmp_path / "run"
    typo = _train(f"--data_dir={tmp_path / 'typo'}", f"--train_dir={train_dir}", check=1)
    assert "typo" in typo.stderr
    assert not (train_dir / "config.json").exists()
    assert not (train_dir / "training.json").exists()
    _train(*TINY, "--model_dim=3", f"--data_dir={data_dir}", f"--train_dir={train_dir}",
           "--train_steps=1", "--preview_every_steps=0", "--noexport", check=0)
    assert GANConfig.load(str(train_dir)).model_dim == 3
    assert settings.TrainingOptions.load(str(train_dir)).data_dir == data_dir


def test_nan_loss_exits_1_keeping_the_last_good_checkpoint(tmp_path, data_dir):
    train_dir = str(tmp_path / "run")
    runs.train(train_dir, dict(model_dim=2, batch_size=2, n_critic=1, latent_dim=8,
                               kernel_len=5),
               dict(data_dir=data_dir, train_steps=2, export=False), verbose=0)
    proc = _train(f"--train_dir={train_dir}", "--train_steps=10", "--d_learning_rate=1e30",
                  "--save_every_steps=1", check=1)
    assert "error: training diverged" in proc.stderr and "Traceback" not in proc.stderr
    assert "the newest checkpoint is step 2" in proc.stderr
    assert os.path.basename(latest_checkpoint(train_dir)) == "ckpt-2"
