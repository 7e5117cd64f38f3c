"""End-to-end tests of ``evaluate.py``: both subcommands on tiny data, and its error messages."""

import json
import os
import re
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf
import tensorflow as tf

from wavegan_tf.training.checkpoints import CHECKPOINT_PREFIX, checkpoint_dir
from wavegan_tf.training.config import GANConfig

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SAMPLE_RATE = 16000
PITCHES = {"high": 1760.0, "low": 220.0, "mid": 660.0}
FLAG_NAMES = ("seed", "batch_size", "data_dir", "out", "slice_len", "sample_rate", "epochs",
              "patience", "learning_rate", "filters", "holdout_fraction", "classifier",
              "generated", "reference", "heldout", "n", "splits", "ndb_bins", "nn_samples",
              "json")
REPORT_KEYS = ("inception_score", "inception_score_std", "fid", "d_self", "d_train", "ndb", "n")


def run_cli(*args):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    return subprocess.run([sys.executable, "evaluate.py", *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=300)


def write_clips(folder, pitch, count, rng, noise=False):
    os.makedirs(folder, exist_ok=True)
    for i in range(count):
        n = int(SAMPLE_RATE * rng.uniform(0.15, 0.3))
        t = np.arange(n) / SAMPLE_RATE
        if noise:
            clip = 0.3 * rng.normal(size=n)
        else:
            clip = 0.5 * np.sin(2 * np.pi * pitch * rng.uniform(0.97, 1.03) * t) * np.hanning(n)
        sf.write(os.path.join(folder, f"{i:02d}.wav"), clip.astype(np.float32), SAMPLE_RATE,
                 subtype="PCM_16")


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    """Labelled tones (with train/test splits), a noise folder and a classifier trained by the
    CLI: (root, classifier path, train_classifier's stdout)."""
    root = tmp_path_factory.mktemp("cli")
    rng = np.random.default_rng(0)
    for name, pitch in PITCHES.items():
        write_clips(root / "tones" / name, pitch, 20, rng)
        write_clips(root / "split" / "train" / name, pitch, 12, rng)
        write_clips(root / "split" / "test" / name, pitch, 5, rng)
    write_clips(root / "noise", 0.0, 30, rng, noise=True)
    path = str(root / "clf" / "tones.keras")
    result = run_cli("train_classifier", "--data_dir", str(root / "tones"), "--out", path,
                     "--slice_len", "4096", "--sample_rate", "8000", "--epochs", "15",
                     "--batch_size", "8", "--patience", "6", "--learning_rate", "0.002",
                     "--filters", "8", "--holdout_fraction", "0.2", "--seed", "1")
    assert result.returncode == 0, result.stderr
    return root, path, result.stdout


def write_train_dir(path):
    """A training directory with a tiny untrained generator saved at step 7."""
    config = GANConfig(model_dim=2, latent_dim=8, batch_size=4)
    os.makedirs(path)
    config.save(path)
    checkpoint = tf.train.Checkpoint(generator=config.build_generator(),
                                     step=tf.Variable(7, dtype=tf.int64))
    tf.train.CheckpointManager(checkpoint, checkpoint_dir(path), max_to_keep=1,
                               checkpoint_name=CHECKPOINT_PREFIX).save()
    return str(path)


def test_help_lists_exactly_the_flags_it_uses():
    result = run_cli("--help")
    assert "evaluate.py:" in result.stdout, result.stderr
    section = result.stdout.split("evaluate.py:", 1)[1].split("Try --helpfull", 1)[0]
    assert sorted(re.findall(r"^  --(\w+):", section, flags=re.MULTILINE)) == sorted(FLAG_NAMES)
    with open(os.path.join(REPO, "wavegan_tf", "cli", "evaluate.py"), encoding="utf-8") as f:
        source = f.read()
    for name in FLAG_NAMES:
        assert f"FLAGS.{name}" in source, f"--{name} is defined but not used"
    assert "train_classifier" in result.stdout and "score" in result.stdout


class TestTrainClassifier:
    def test_trains_saves_and_reports_held_out_accuracy(self, workspace):
        _, path, stdout = workspace
        assert "held-out accuracy" in stdout and "high, low, mid" in stdout
        with open(path + ".json", encoding="utf-8") as f:
            meta = json.load(f)
        assert meta["class_names"] == ["high", "low", "mid"]
        assert meta["test_accuracy"] >= 0.9
        assert f"held-out accuracy {meta['test_accuracy']:.4f} on 12 clips" in stdout

    def test_flags_reach_the_classifier(self, workspace):
        _, path, _ = workspace
        with open(path + ".json", encoding="utf-8") as f:
            meta = json.load(f)
        # --holdout_fraction 0.2 of 20 clips: 4 valid + 4 test per class
        assert (meta["num_train"], meta["num_valid"], meta["num_test"]) == (36, 12, 12)
        assert (meta["slice_len"], meta["sample_rate"], meta["filters"]) == (4096, 8000, 8)
        assert (meta["batch_size"], meta["patience"], meta["seed"]) == (8, 6, 1)
        assert meta["learning_rate"] == 0.002
        assert meta["max_epochs"] == 15 and 1 <= meta["epochs_run"] <= 15
        from wavegan_tf.eval.classifier import load_classifier
        loaded = load_classifier(path)
        assert (loaded.slice_len, loaded.sample_rate) == (4096, 8000)
        assert loaded.model.get_layer("conv_0").filters == 8


class TestScore:
    def test_scores_a_wav_folder_and_writes_the_report(self, workspace):
        root, path, _ = workspace
        report_path = root / "reports" / "noise.json"
        result = run_cli("score", "--classifier", path, "--generated", str(root / "noise"),
                         "--reference", str(root / "tones"), "--n", "24", "--splits", "2",
                         "--ndb_bins", "5", "--nn_samples", "8", "--batch_size", "5",
                         "--seed", "4", "--json", str(report_path))
        assert result.returncode == 0, result.stderr
        report = json.loads(report_path.read_text())
        for key in REPORT_KEYS:
            assert key in report, key
        assert report["n"] == 24 and report["splits"] == 2 and report["ndb_bins"] == 5
        assert report["nn_samples"] == 8 and report["seed"] == 4 and report["batch_size"] == 5
        assert 1.0 <= report["inception_score"] <= 3.0
        # noise is nothing like the tones: far from the reference, in most NDB bins apart
        assert report["fid"] > 10 * report["real"]["fid"]
        assert report["d_train_ratio"] > 2
        assert report["ndb"] >= 3 and report["real"]["ndb"] <= 1
        assert "inception score" in result.stdout and "|D|train" in result.stdout
        assert f"wrote {report_path}" in result.stdout

    def test_real_clips_score_like_the_held_out_set(self, workspace):
        root, path, _ = workspace
        result = run_cli("score", "--classifier", path, "--generated",
                         str(root / "split" / "train"), "--reference", str(root / "split"),
                         "--splits", "1", "--ndb_bins", "3", "--json", str(root / "real.json"))
        assert result.returncode == 0, result.stderr
        report = json.loads((root / "real.json").read_text())
        assert report["n"] == 36 and report["num_reference"] == 36
        assert report["heldout"].endswith(os.path.join("split", "test"))
        assert report["real"]["n"] == 15
        assert report["inception_score"] > 2.5
        assert report["d_train"] == pytest.approx(0.0, abs=1e-3)
        assert report["ndb"] == 0

    def test_heldout_flag_names_the_held_out_folder(self, workspace):
        root, path, _ = workspace
        result = run_cli("score", "--classifier", path, "--generated", str(root / "noise"),
                         "--reference", str(root / "tones"), "--heldout",
                         str(root / "split" / "test"), "--n", "10", "--splits", "1",
                         "--ndb_bins", "4", "--json", str(root / "heldout.json"))
        assert result.returncode == 0, result.stderr
        report = json.loads((root / "heldout.json").read_text())
        assert report["heldout"] == str(root / "split" / "test")
        assert report["real"]["n"] == 15 and report["num_reference"] == 60

    def test_scores_a_training_directory(self, workspace):
        root, path, _ = workspace
        train_dir = write_train_dir(root / "run")
        result = run_cli("score", "--classifier", path, "--generated", train_dir,
                         "--reference", str(root / "tones"), "--n", "20", "--splits", "2",
                         "--ndb_bins", "4", "--json", str(root / "run.json"))
        assert result.returncode == 0, result.stderr
        report = json.loads((root / "run.json").read_text())
        assert report["n"] == 20 and report["generated"] == train_dir
        assert 1.0 <= report["inception_score"] <= 3.0


class TestErrors:
    def assert_error(self, result, *fragments):
        assert result.returncode == 1
        assert result.stderr.splitlines()[-1].startswith("error: ")
        assert "Traceback" not in result.stderr
        for fragment in fragments:
            assert fragment in result.stderr

    def test_missing_classifier(self, workspace):
        root, _, _ = workspace
        self.assert_error(run_cli("score", "--classifier", str(root / "none.keras"),
                                  "--generated", str(root / "noise"),
                                  "--reference", str(root / "tones")),
                          "classifier file", "none.keras")

    def test_missing_folders(self, workspace):
        root, path, _ = workspace
        self.assert_error(run_cli("score", "--classifier", path, "--generated",
                                  str(root / "noise"), "--reference", str(root / "absent")),
                          "reference folder", "absent")
        self.assert_error(run_cli("train_classifier", "--data_dir", str(root / "absent"),
                                  "--out", str(root / "x.keras")),
                          "labelled data folder", "absent")

    @pytest.mark.parametrize("splits, message", [("0", "splits=0"), ("30", "splits=30")])
    def test_bad_splits(self, workspace, splits, message):
        root, path, _ = workspace
        self.assert_error(run_cli("score", "--classifier", path, "--generated",
                                  str(root / "noise"), "--reference", str(root / "tones"),
                                  "--n", "20", "--splits", splits), message)

    def test_missing_flags_and_subcommand(self):
        self.assert_error(run_cli("score", "--classifier", "c.keras"),
                          "--generated", "--reference")
        self.assert_error(run_cli("--n", "3"), "train_classifier or score")
