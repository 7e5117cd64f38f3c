"""The exported SavedModel and .keras file: contract, loading without wavegan_tf, atomicity."""

import json
import os
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest
import tensorflow as tf

import wavegan_tf
from wavegan_tf.serving import export
from wavegan_tf.training import checkpoints
from wavegan_tf.files.atomic_files import atomic_output_dir
from wavegan_tf.training.config import GANConfig

from support import snapshot

LATENT_DIM = 8
SAMPLE_RATE = 8000
STEP = 3


def make_train_dir(directory, step=STEP):
    """A training directory with a tiny config and one checkpoint at ``step``."""
    config = GANConfig(model_dim=2, latent_dim=LATENT_DIM, slice_len=16384,
                           sample_rate=SAMPLE_RATE)
    os.makedirs(directory, exist_ok=True)
    config.save(directory)
    gan = config.build_gan()
    step_var = tf.Variable(step, dtype=tf.int64)
    tf.train.CheckpointManager(checkpoints.make_checkpoint(gan, step_var),
                               checkpoints.checkpoint_dir(directory), max_to_keep=3).save()
    return str(directory)


def temp_entries(directory):
    """Leftover temporary names (``.NAME.tmp-*`` / ``.NAME.old-*``) in ``directory``."""
    return [name for name in os.listdir(directory) if name.startswith(".")]


@pytest.fixture(scope="module")
def train_dir(tmp_path_factory):
    return make_train_dir(tmp_path_factory.mktemp("run"))


@pytest.fixture(scope="module")
def export_dir(train_dir):
    return export.export_generator(train_dir)


@pytest.fixture(scope="module")
def generator(train_dir):
    return checkpoints.load_generator(train_dir)[1]


@pytest.fixture(scope="module")
def z():
    return np.random.default_rng(1).uniform(-1, 1, (3, LATENT_DIM)).astype(np.float32)


def test_export_writes_savedmodel_keras_file_and_metadata_into_train_dir_export(
        train_dir, export_dir):
    assert export_dir == os.path.join(train_dir, "export")
    for name in ("saved_model.pb", "variables", "generator.keras",
                 os.path.join("assets", "wavegan.json")):
        assert os.path.exists(os.path.join(export_dir, name)), name
    assert temp_entries(train_dir) == []


def test_metadata_asset_describes_the_model(train_dir, export_dir):
    metadata = export.read_metadata(export_dir)
    assert metadata["sample_rate"] == SAMPLE_RATE
    assert metadata["latent_dim"] == LATENT_DIM
    assert metadata["slice_len"] == 16384
    assert metadata["num_channels"] == 1
    assert metadata["step"] == STEP
    assert metadata["wavegan_tf_version"] == wavegan_tf.__version__
    assert metadata["config"] == GANConfig.load(train_dir).to_dict()
    assert set(metadata["signatures"]) == {"serving_default", "generate"}


# Runs in a fresh interpreter that imports only TensorFlow and NumPy.
PLAIN_TF_SCRIPT = textwrap.dedent("""
    import json, sys
    import numpy as np
    import tensorflow as tf
    export_dir, z_path, out_path = sys.argv[1:]
    loaded = tf.saved_model.load(export_dir)
    serve = loaded.signatures["serving_default"]
    generate = loaded.signatures["generate"]
    served = serve(z=tf.constant(np.load(z_path)))
    first = generate(n=tf.constant(4), seed=tf.constant(7, tf.int64))
    again = generate(n=tf.constant(4), seed=tf.constant(7, tf.int64))
    other = generate(n=tf.constant(4), seed=tf.constant(8, tf.int64))
    np.savez(out_path, served=served["audio"].numpy(), audio=first["audio"].numpy(),
             z=first["z"].numpy(), again=again["audio"].numpy(), other_z=other["z"].numpy())
    with open(loaded.metadata.asset_path.numpy().decode(), encoding="utf-8") as f:
        asset = json.load(f)
    print(json.dumps({
        "signatures": sorted(loaded.signatures.keys()),
        "serving_inputs": sorted(serve.structured_input_signature[1]),
        "serving_outputs": sorted(serve.structured_outputs),
        "generate_inputs": sorted(generate.structured_input_signature[1]),
        "generate_outputs": sorted(generate.structured_outputs),
        "served_dtype": served["audio"].dtype.name,
        "attributes": {name: getattr(loaded, name).numpy().item() for name in
                       ("sample_rate", "latent_dim", "slice_len", "num_channels", "step")},
        "version": loaded.wavegan_tf_version.numpy().decode(),
        "asset_sample_rate": asset["sample_rate"],
        "wavegan_modules": [m for m in sys.modules if m.split(".")[0] == "wavegan_tf"],
    }))
""")


def test_savedmodel_loads_and_serves_in_a_process_without_wavegan_tf(
        export_dir, generator, z, tmp_path):
    z_path, out_path = tmp_path / "z.npy", tmp_path / "out.npz"
    np.save(z_path, z)
    result = subprocess.run(
        [sys.executable, "-c", PLAIN_TF_SCRIPT, export_dir, str(z_path), str(out_path)],
        capture_output=True, text=True, cwd=tmp_path, timeout=120,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["wavegan_modules"] == []
    assert report["signatures"] == ["generate", "serving_default"]
    assert report["serving_inputs"] == ["z"] and report["serving_outputs"] == ["audio"]
    assert report["generate_inputs"] == ["n", "seed"]
    assert report["generate_outputs"] == ["audio", "z"]
    assert report["served_dtype"] == "float32"
    assert report["attributes"] == {"sample_rate": SAMPLE_RATE, "latent_dim": LATENT_DIM,
                                    "slice_len": 16384, "num_channels": 1, "step": STEP}
    assert report["version"] == wavegan_tf.__version__
    assert report["asset_sample_rate"] == SAMPLE_RATE

    out = np.load(out_path)
    np.testing.assert_allclose(out["served"], generator(z).numpy(), atol=1e-6)
    assert out["audio"].shape == (4, 16384, 1) and out["audio"].dtype == np.float32
    assert np.all(np.abs(out["audio"]) <= 1.0)
    assert out["z"].shape == (4, LATENT_DIM) and np.all(np.abs(out["z"]) <= 1.0)
    np.testing.assert_array_equal(out["audio"], out["again"])
    assert not np.allclose(out["z"], out["other_z"])
    np.testing.assert_allclose(out["audio"], generator(out["z"]).numpy(), atol=1e-6)


def test_tfsm_layer_serves_the_export(export_dir, generator, z):
    layer = keras.layers.TFSMLayer(export_dir, call_endpoint="serving_default")
    audio = layer(z)["audio"]
    np.testing.assert_allclose(audio.numpy(), generator(z).numpy(), atol=1e-6)


def test_keras_file_round_trips_with_safe_mode(export_dir, generator, z):
    loaded = keras.saving.load_model(os.path.join(export_dir, "generator.keras"),
                                     safe_mode=True)
    np.testing.assert_allclose(loaded(z).numpy(), generator(z).numpy(), atol=1e-6)


def test_export_to_another_folder(train_dir, tmp_path):
    target = str(tmp_path / "deep" / "model")
    assert export.export_generator(train_dir, target) == target
    assert os.path.isfile(os.path.join(target, "saved_model.pb"))
    assert temp_entries(tmp_path / "deep") == []


def test_reexport_replaces_the_previous_export(tmp_path):
    run = make_train_dir(tmp_path / "run", step=3)
    export.export_generator(run)
    make_train_dir(tmp_path / "run", step=9)
    export_dir = export.export_generator(run)
    assert export.read_metadata(export_dir)["step"] == 9
    assert int(tf.saved_model.load(export_dir).step.numpy()) == 9
    assert temp_entries(run) == []


@pytest.mark.parametrize("failing", ["tensorflow.saved_model.save", "keras.saving.save_model"])
def test_failed_export_keeps_the_previous_export_and_leaves_no_temp_files(
        tmp_path, monkeypatch, failing):
    run = make_train_dir(tmp_path / "run")
    export_dir = export.export_generator(run)
    before = snapshot(export_dir)

    def half_write_then_fail(obj, path, *args, **kwargs):
        target = path if failing.startswith("keras") else os.path.join(path, "saved_model.pb")
        with open(target, "wb") as f:
            f.write(b"partial")
        raise RuntimeError("disk full")

    monkeypatch.setattr(failing, half_write_then_fail)
    with pytest.raises(RuntimeError, match="disk full"):
        export.export_generator(run)
    assert snapshot(export_dir) == before
    assert temp_entries(run) == []


def test_failed_first_export_leaves_nothing(tmp_path, monkeypatch):
    run = make_train_dir(tmp_path / "run")

    def fail(*args, **kwargs):
        raise RuntimeError("interrupted")

    monkeypatch.setattr("tensorflow.saved_model.save", fail)
    with pytest.raises(RuntimeError, match="interrupted"):
        export.export_generator(run)
    assert not os.path.exists(os.path.join(run, "export"))
    assert temp_entries(run) == []


@pytest.mark.parametrize("exchange", ["unavailable", "failing"])
def test_failed_rename_into_place_puts_the_old_folder_back(tmp_path, monkeypatch, exchange):
    """Without renameat2's exchange the old folder is renamed aside and must come back when the
    new one cannot be renamed in; a failing exchange must leave the old folder untouched."""
    from wavegan_tf.files import atomic_files

    target = tmp_path / "out"
    target.mkdir()
    (target / "old.txt").write_text("old")
    real_rename = os.rename

    def rename(src, dst):
        if os.path.basename(src).startswith(".out.tmp-"):
            raise OSError("rename failed")
        real_rename(src, dst)

    def failing_exchange(a, b):
        raise OSError("rename failed")

    monkeypatch.setattr(os, "rename", rename)
    monkeypatch.setattr(atomic_files, "_exchange",
                        (lambda a, b: False) if exchange == "unavailable" else failing_exchange)
    with pytest.raises(OSError, match="rename failed"):
        with atomic_output_dir(str(target)) as tmp:
            with open(os.path.join(tmp, "new.txt"), "w") as f:
                f.write("new")
    assert sorted(os.listdir(target)) == ["old.txt"]
    assert temp_entries(tmp_path) == []


def test_export_without_checkpoint_says_to_train_first(tmp_path):
    GANConfig(model_dim=2, latent_dim=LATENT_DIM).save(str(tmp_path))
    with pytest.raises(FileNotFoundError, match="no checkpoint in .*checkpoints.*train first"):
        export.export_generator(str(tmp_path))
    assert not os.path.exists(tmp_path / "export")


def test_bfloat16_export_stays_close_to_float32_and_says_its_precision(
        train_dir, generator, z, tmp_path):
    path = export.export_generator(train_dir, str(tmp_path / "bf16"), precision="bfloat16")
    loaded = tf.saved_model.load(path)
    audio = loaded.signatures["serving_default"](z=tf.constant(z))["audio"]
    assert audio.dtype == tf.float32
    assert loaded.precision.numpy() == b"bfloat16"
    assert export.read_metadata(path)["precision"] == "bfloat16"
    reference = generator(z).numpy()
    error = np.abs(audio.numpy() - reference).max()
    assert 0 < error < 0.05 * max(np.abs(reference).max(), 1e-3)
    assert keras.mixed_precision.global_policy().name == "float32"


def test_unknown_export_precision_is_rejected(train_dir, tmp_path):
    with pytest.raises(ValueError, match="precision='float16'"):
        export.export_generator(train_dir, str(tmp_path / "x"), precision="float16")
