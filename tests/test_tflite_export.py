"""generate.py --tflite and wavegan_tf.serving.tflite_export: G as a LiteRT flatbuffer, and back.

The float32 flatbuffer must give the SavedModel's audio within FLOAT32_TOLERANCE; the float16
and int8 ones are smaller and their signal-to-noise ratio against the SavedModel is reported
and bounded from below.
"""

import json
import os
import re

import numpy as np
import pytest
import tensorflow as tf
from ai_edge_litert.interpreter import Interpreter

from wavegan_tf.cli import generate_wavs
from wavegan_tf.nets import latent
from wavegan_tf.serving import export, loading, tflite_export

from support import make_loud_train_dir, run_generate_main

LATENT_DIM = 8
CLASSES = ["kick", "snare", "hat"]
# float32 LiteRT vs the SavedModel: the same math in another order (XNNPACK kernels).
FLOAT32_TOLERANCE = 1e-5
# Lower bounds on the SNR against the SavedModel, well under what the reduced types reach.
MIN_SNR_DB = {"float16": 50.0, "int8": 25.0}


def snr_db(reference, other):
    return float(10 * np.log10(np.sum(reference**2) / np.sum((reference - other) ** 2)))


@pytest.fixture(scope="module")
def export_dir(tmp_path_factory):
    train_dir = make_loud_train_dir(tmp_path_factory.mktemp("run"), model_dim=4)
    return export.export_generator(train_dir)


@pytest.fixture(scope="module")
def z():
    return latent.sample_z(4, LATENT_DIM, 0)


@pytest.fixture(scope="module")
def reference(export_dir, z):
    serve = tf.saved_model.load(export_dir).signatures["serving_default"]
    return serve(z=tf.constant(z))["audio"].numpy()


@pytest.fixture(scope="module")
def flatbuffers(export_dir, tmp_path_factory):
    """weight type -> path of the .tflite written from the export."""
    folder = tmp_path_factory.mktemp("tflite")
    return {weights: tflite_export.export_tflite(export_dir, str(folder / f"g_{weights}.tflite"),
                                                 weights=weights)
            for weights in tflite_export.WEIGHT_TYPES}


def test_float32_flatbuffer_gives_the_savedmodels_audio(flatbuffers, z, reference):
    runner = Interpreter(model_path=flatbuffers["float32"]).get_signature_runner()
    audio = np.concatenate([runner(z=row[None])[tflite_export.OUTPUT_NAME] for row in z])
    assert audio.shape == reference.shape == (4, 16384, 1)
    assert np.abs(reference).max() > 0.3
    error = float(np.abs(audio - reference).max())
    print(f"float32 max_abs_err={error:.2e}")
    assert error <= FLOAT32_TOLERANCE


@pytest.mark.parametrize("weights", ["float16", "int8"])
def test_smaller_weights_are_smaller_and_close(flatbuffers, z, reference, weights):
    run, _ = tflite_export.load_tflite(flatbuffers[weights])
    audio = run(z)
    snr = snr_db(reference, audio)
    ratio = os.path.getsize(flatbuffers[weights]) / os.path.getsize(flatbuffers["float32"])
    print(f"{weights} snr_db={snr:.1f} size_ratio={ratio:.2f}")
    assert snr >= MIN_SNR_DB[weights]
    assert ratio < {"float16": 0.6, "int8": 0.35}[weights]


def test_metadata_beside_the_flatbuffer(flatbuffers, export_dir):
    with open(flatbuffers["int8"] + ".json", encoding="utf-8") as f:
        metadata = json.load(f)
    exported = export.read_metadata(export_dir)
    for key in ("sample_rate", "latent_dim", "slice_len", "num_channels", "step", "config"):
        assert metadata[key] == exported[key], key
    assert metadata["weights"] == "int8" and metadata["batch"] == 1
    assert metadata["signatures"] == {"serving_default": {"inputs": ["z"],
                                                          "outputs": ["output_0"]}}


def test_generate_from_the_flatbuffer_writes_the_exports_clips(flatbuffers, export_dir,
                                                               tmp_path):
    from_tflite = generate_wavs.run_generation(flatbuffers["float32"], str(tmp_path / "a"), n=3,
                                               seed=5)
    from_export = generate_wavs.run_generation(export_dir, str(tmp_path / "b"), n=3, seed=5)
    model = loading.load_model_for_generation(flatbuffers["float32"])
    assert (model.sample_rate, model.latent_dim, model.step) == (8000, LATENT_DIM, 7)
    for a, b in zip(from_tflite, from_export):
        with open(a, "rb") as fa, open(b, "rb") as fb:
            pcm_a = np.frombuffer(fa.read()[44:], np.int16).astype(int)
            pcm_b = np.frombuffer(fb.read()[44:], np.int16).astype(int)
        assert np.abs(pcm_a - pcm_b).max() <= 1


def test_conditional_flatbuffer_takes_a_label(tmp_path):
    export_dir = export.export_generator(
        make_loud_train_dir(tmp_path / "run", class_names=CLASSES))
    path = tflite_export.export_tflite(export_dir, str(tmp_path / "cond.tflite"))
    model = loading.load_model_for_generation(path)
    assert model.class_names == CLASSES
    z = latent.sample_z(3, LATENT_DIM, 1)
    labels = np.array([0, 2, 1], np.int32)
    serve = tf.saved_model.load(export_dir).signatures["serving_default"]
    expected = serve(z=tf.constant(z), label=tf.constant(labels))["audio"].numpy()
    assert np.abs(model.generate(z, labels=labels) - expected).max() <= FLOAT32_TOLERANCE


def test_existing_files_are_kept_unless_overwrite(export_dir, tmp_path):
    path = tmp_path / "g.tflite"
    path.write_bytes(b"keep me")
    with pytest.raises(FileExistsError, match=re.escape(f"{str(path)!r} already exists; pass "
                                                        "--overwrite")):
        tflite_export.export_tflite(export_dir, str(path))
    assert path.read_bytes() == b"keep me"
    tflite_export.export_tflite(export_dir, str(path), overwrite=True, weights="float16")
    assert path.read_bytes()[4:8] == b"TFL3"
    assert sorted(os.listdir(tmp_path)) == ["g.tflite", "g.tflite.json"]


@pytest.mark.parametrize("name, weights, message", [
    ("g.onnx", "float32", "--tflite must name a .tflite file"),
    ("g.tflite", "int4", "--tflite_weights must be one of ['float32', 'float16', 'int8']"),
])
def test_bad_path_or_weight_type_is_refused(export_dir, tmp_path, name, weights, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        tflite_export.export_tflite(export_dir, str(tmp_path / name), weights=weights)
    assert os.listdir(tmp_path) == []


def test_unwritable_folder_and_non_model_are_named(export_dir, tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    with pytest.raises(OSError, match=re.escape(f"cannot write to output directory "
                                                f"{str(blocker)!r}")):
        tflite_export.export_tflite(export_dir, str(blocker / "g.tflite"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="neither a training directory .* nor a WaveGAN export"):
        tflite_export.export_tflite(str(tmp_path / "empty"), str(tmp_path / "g.tflite"))
    assert sorted(os.listdir(tmp_path)) == ["a_file", "empty"]


def test_flatbuffer_without_its_facts_is_named(flatbuffers, tmp_path):
    lone = tmp_path / "lone.tflite"
    with open(flatbuffers["float32"], "rb") as f:
        lone.write_bytes(f.read())
    with pytest.raises(FileNotFoundError, match=re.escape(f"{str(lone) + '.json'!r} is "
                                                          "missing")):
        loading.load_model_for_generation(str(lone))


def test_cli_writes_a_flatbuffer_that_generate_reads(export_dir, tmp_path, capsys):
    path = str(tmp_path / "g.tflite")
    assert run_generate_main("--model", export_dir, "--tflite", path,
                             "--tflite_weights", "int8") == 0
    assert f"wrote {path} (int8 weights)" in capsys.readouterr().out
    with open(path + ".json", encoding="utf-8") as f:
        assert json.load(f)["weights"] == "int8"
    assert run_generate_main("--model", path, "--n", "2", "--out_dir",
                             str(tmp_path / "wavs")) == 0
    assert sorted(os.listdir(tmp_path / "wavs")) == ["wavegan_0000.wav", "wavegan_0001.wav"]
    assert run_generate_main("--model", export_dir, "--tflite", path, "--seed", "2") == 1
    assert "error: --seed shape WAV output and are not used with --tflite" in \
        capsys.readouterr().err


def test_a_batched_flatbuffer_takes_its_batch_per_call_and_fills_the_last(export_dir, z,
                                                                          reference, tmp_path):
    path = tflite_export.export_tflite(export_dir, str(tmp_path / "b3.tflite"), batch=3)
    runner = Interpreter(model_path=path).get_signature_runner()
    assert list(runner.get_input_details()["z"]["shape"]) == [3, LATENT_DIM]
    with open(path + ".json", encoding="utf-8") as f:
        assert json.load(f)["batch"] == 3
    run, _ = tflite_export.load_tflite(path)
    audio = run(z)  # 4 clips: one full batch of 3, then 1 filled up with zeros
    assert audio.shape == reference.shape
    assert float(np.abs(audio - reference).max()) <= FLOAT32_TOLERANCE
    assert float(np.abs(run(z[1:3]) - reference[1:3]).max()) <= FLOAT32_TOLERANCE


def test_a_batched_conditional_flatbuffer_fills_labels_too(tmp_path):
    export_dir = export.export_generator(
        make_loud_train_dir(tmp_path / "run", class_names=CLASSES))
    model = loading.load_model_for_generation(
        tflite_export.export_tflite(export_dir, str(tmp_path / "cond.tflite"), batch=2))
    z, labels = latent.sample_z(3, LATENT_DIM, 1), np.array([2, 0, 1], np.int32)
    serve = tf.saved_model.load(export_dir).signatures["serving_default"]
    expected = serve(z=tf.constant(z), label=tf.constant(labels))["audio"].numpy()
    assert np.abs(model.generate(z, labels=labels) - expected).max() <= FLOAT32_TOLERANCE


def test_generation_chunks_are_whole_numbers_of_the_files_batch():
    sizes = []

    def audio_fn(z):
        sizes.append(int(z.shape[0]))
        return np.zeros((z.shape[0], 16, 1), np.float32)

    model = loading.GenerationModel(audio_fn, sample_rate=16000, latent_dim=LATENT_DIM,
                                    slice_len=16, num_channels=1, source="g.tflite", step=0,
                                    call_batch=3)
    audio = model.generate(latent.sample_z(7, LATENT_DIM, 0), batch_size=4)
    assert audio.shape == (7, 16, 1)
    assert sizes == [6, 1]  # 4 rounded up to 6; only the last call is partial


def test_cli_batch_flag_reaches_the_file_and_a_bad_one_is_named(export_dir, tmp_path, capsys):
    path = str(tmp_path / "g.tflite")
    assert run_generate_main("--model", export_dir, "--tflite", path, "--tflite_batch",
                             "4") == 0
    with open(path + ".json", encoding="utf-8") as f:
        assert json.load(f)["batch"] == 4
    capsys.readouterr()
    assert run_generate_main("--model", export_dir, "--tflite", str(tmp_path / "h.tflite"),
                             "--tflite_batch", "0") == 1
    assert "--tflite_batch must be a whole number >= 1, got 0" in capsys.readouterr().err
    assert not os.path.exists(tmp_path / "h.tflite")


@pytest.mark.parametrize("args, message", [
    (["--tflite_weights", "int8"], "--tflite_weights needs --tflite"),
    (["--tflite_batch", "8"], "--tflite_batch needs --tflite"),
    (["--web", "site", "--tflite", "g.tflite"], "--web and --tflite are exclusive"),
])
def test_cli_refuses_flags_that_do_not_go_together(args, message):
    from absl import app
    with pytest.raises(app.UsageError, match=message):
        run_generate_main("--model", "m", *args)
