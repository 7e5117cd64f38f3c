"""Pretrained models: packing a run, loading by name (library, generate.py, exports), the model
card, the float16 storage's measured error, and clear errors for unknown names."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from support import make_loud_train_dir
from wavegan_tf.nets.latent import sample_z
from wavegan_tf.serving import loading, pretrained
from wavegan_tf.serving.export import load_keras_generator

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CARD = {"description": "a tiny test model", "data": "noise", "licence": "CC0-1.0",
        "command": "make_loud_train_dir", "minutes": 0.1, "scores": {"silent_share": 0.25}}


@pytest.fixture(scope="module")
def packed(tmp_path_factory):
    """A tiny WaveGAN run packed as pretrained:tiny into a root of its own, by the command."""
    base = tmp_path_factory.mktemp("pretrained")
    run = make_loud_train_dir(base / "run", sample_rate=16000, step=42)
    card = base / "card.json"
    card.write_text(json.dumps(CARD))
    root = base / "models"
    proc = subprocess.run(
        [sys.executable, "-m", "wavegan_tf.cli.pack_pretrained", f"--model={run}",
         "--name=tiny", f"--card={card}", f"--root={root}"],
        capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "pretrained:tiny: a tiny test model" in proc.stdout
    return run, str(root)


def test_a_packed_model_holds_config_weights_and_card(packed):
    _, root = packed
    folder = os.path.join(root, "tiny")
    assert sorted(os.listdir(folder)) == ["config.json", "generator.npz", "model_card.json"]
    card = pretrained.card("tiny", root)
    assert {k: card[k] for k in CARD} == CARD
    assert (card["steps"], card["model"], card["model_dim"]) == (42, "wavegan", 2)
    assert card["storage"]["dtype"] == "float16"
    assert 0 < card["storage"]["max_abs_audio_error"] < 0.05
    assert card["storage"]["audio_snr_db"] > 30
    with np.load(os.path.join(folder, "generator.npz")) as stored:
        assert {stored[key].dtype for key in stored.files} == {np.dtype("float16")}
    assert pretrained.names(root) == ["tiny"]


def test_loading_by_name_gives_the_runs_audio_within_the_cards_error(packed):
    run, root = packed
    config, generator, step = pretrained.load("pretrained:tiny", root)
    _, original, _ = load_keras_generator(run)
    z = sample_z(8, config.latent_dim, 3)
    error = np.max(np.abs(np.asarray(generator(z)) - np.asarray(original(z))))
    assert step == 42 and np.std(np.asarray(original(z))) > 0.05
    assert error <= 2 * pretrained.card("tiny", root)["storage"]["max_abs_audio_error"] + 1e-6


def test_unknown_names_are_refused_listing_the_known_ones(packed):
    _, root = packed
    with pytest.raises(ValueError, match=r"unknown pretrained model 'nope'; known: tiny"):
        pretrained.load("pretrained:nope", root)
    with pytest.raises(ValueError, match="unknown pretrained model 'nope'"):
        loading.load_pretrained("nope")


def test_damaged_weights_are_refused_naming_the_model(packed, tmp_path):
    _, root = packed
    import shutil

    broken = tmp_path / "models"
    shutil.copytree(root, broken)
    np.savez(broken / "tiny" / "generator.npz", w000=np.zeros(3, np.float16))
    with pytest.raises(ValueError, match="pretrained model 'tiny': generator.npz does not fit"):
        pretrained.load("tiny", str(broken))


def test_pack_refuses_bad_names_and_cards(tmp_path):
    card = tmp_path / "card.json"
    card.write_text("[1, 2]")
    base = [sys.executable, "-m", "wavegan_tf.cli.pack_pretrained", "--model=nowhere",
            f"--root={tmp_path / 'models'}"]
    bad_name = subprocess.run(base + ["--name=../x", f"--card={card}"], capture_output=True,
                              text=True, cwd=ROOT, timeout=120)
    assert bad_name.returncode != 0 and "--name must be a plain word" in bad_name.stderr
    bad_card = subprocess.run(base + ["--name=x", f"--card={card}"], capture_output=True,
                              text=True, cwd=ROOT, timeout=120)
    assert bad_card.returncode == 1 and "must hold a JSON object" in bad_card.stderr
    assert not (tmp_path / "models").exists()


def test_pack_takes_the_benchmark_scores_of_its_variant(packed, tmp_path):
    run, _ = packed
    report = {"peak_gflops": 123.4, "real": {"inception_score": 8.2, "fid": 5.6},
              "configs": {"run": {"loss": "wgan-gp"}},
              "curves": {"run": [{"step": 0, "minutes": 0.0, "inception_score": 1.0},
                                 {"step": 40, "minutes": 3.5, "inception_score": 2.5,
                                  "fid": 900.0, "classes_present": 6}]}}
    quality = tmp_path / "quality.json"
    quality.write_text(json.dumps(report))
    card = tmp_path / "card.json"
    card.write_text(json.dumps({"description": "with scores"}))
    root = tmp_path / "models"
    command = [sys.executable, "-m", "wavegan_tf.cli.pack_pretrained", f"--model={run}",
               "--name=scored", f"--card={card}", f"--root={root}"]
    proc = subprocess.run(command + [f"--quality_json={quality}"], capture_output=True,
                          text=True, cwd=ROOT, timeout=300)
    assert proc.returncode == 0, proc.stderr
    written = pretrained.card("scored", str(root))
    assert written["scores"] == {"inception_score": 2.5, "fid": 900.0, "classes_present": 6}
    assert written["real_scores"] == {"inception_score": 8.2, "fid": 5.6}
    assert (written["minutes"], written["benchmark_steps"], written["peak_gflops"]) == \
        (3.5, 40, 123.4)
    assert written["settings"] == {"loss": "wgan-gp"}
    report["curves"] = {"other": report["curves"]["run"]}
    quality.write_text(json.dumps(report))
    refused = subprocess.run(command + ["--name=again", f"--quality_json={quality}"],
                             capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert refused.returncode == 1
    assert "has no curve for variant 'run'" in refused.stderr
    assert pretrained.names(str(root)) == ["scored"]
