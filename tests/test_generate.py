"""generate.py, its WAV writing (wavegan_tf.cli.generate_wavs, wavegan_tf.serving.generation) and
model loading (wavegan_tf.serving.loading): WAVs from a training directory or an export."""

import os
import re
import subprocess
import sys

import numpy as np
import pytest
import soundfile
import tensorflow as tf

from wavegan_tf.audio import wav_io
from wavegan_tf.cli import generate_wavs
from wavegan_tf.nets import latent
from wavegan_tf.serving import export, generation, loading
from wavegan_tf.training import checkpoints
from wavegan_tf.training.config import GANConfig

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LATENT_DIM = 8
SAMPLE_RATE = 8000
SLICE_LEN = 16384
# One 16-bit step: what the same float audio may differ by after writing.
PCM_STEP = 1.0 / 32768


def make_train_dir(directory, step=3):
    """A training directory with a tiny config and one checkpoint at ``step``."""
    config = GANConfig(model_dim=2, latent_dim=LATENT_DIM, slice_len=SLICE_LEN,
                           sample_rate=SAMPLE_RATE)
    os.makedirs(directory, exist_ok=True)
    config.save(directory)
    gan = config.build_gan()
    step_var = tf.Variable(step, dtype=tf.int64)
    tf.train.CheckpointManager(checkpoints.make_checkpoint(gan, step_var),
                               checkpoints.checkpoint_dir(directory), max_to_keep=3).save()
    return str(directory)


def read_wavs(paths):
    """The audio of ``paths`` as float32 ``[n, time]``, after checking rate and format."""
    clips = []
    for path in paths:
        info = soundfile.info(path)
        assert info.samplerate == SAMPLE_RATE and info.subtype == "PCM_16", (path, info)
        assert info.format == "WAV" and info.channels == 1
        clips.append(soundfile.read(path, dtype="float32")[0])
    return np.stack(clips)


def wav_names(directory):
    return sorted(name for name in os.listdir(directory) if name.endswith(".wav"))


def run_cli(*args, cwd=REPO_ROOT):
    return subprocess.run(
        [sys.executable, os.path.join(REPO_ROOT, "generate.py"), *args], capture_output=True,
        text=True, cwd=cwd, timeout=120, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})


@pytest.fixture(scope="module")
def train_dir(tmp_path_factory):
    return make_train_dir(tmp_path_factory.mktemp("run"))


@pytest.fixture(scope="module")
def export_dir(train_dir):
    return export.export_generator(train_dir)


@pytest.fixture(params=["train_dir", "export_dir"])
def model_path(request):
    return request.getfixturevalue(request.param)


@pytest.fixture(scope="module")
def generator(train_dir):
    return checkpoints.load_generator(train_dir)[1]


# -- the command line ------------------------------------------------------------------------

def test_cli_writes_wavs_concat_and_z_from_a_train_dir(train_dir, export_dir, tmp_path):
    out = tmp_path / "out"
    result = run_cli("--model", train_dir, "--out_dir", str(out), "--n", "3", "--seed", "5",
                     "--batch_size", "2", "--concat", "--z_out", str(tmp_path / "z.npy"))
    assert result.returncode == 0, result.stderr
    assert wav_names(out) == ["wavegan_0000.wav", "wavegan_0001.wav", "wavegan_0002.wav",
                              "wavegan_all.wav"]
    clips = read_wavs(out / f"wavegan_000{i}.wav" for i in range(3))
    assert clips.shape == (3, SLICE_LEN)
    np.testing.assert_array_equal(np.load(tmp_path / "z.npy"),
                                  latent.sample_z(3, LATENT_DIM, 5))
    # The same seed through the export, in this process, gives the same clips.
    written = generate_wavs.run_generation(export_dir, str(tmp_path / "again"), n=3, seed=5)
    np.testing.assert_allclose(read_wavs(written), clips, atol=PCM_STEP)
    concat = read_wavs([out / "wavegan_all.wav"])[0]
    gap = SAMPLE_RATE // 2
    assert len(concat) == 3 * (SLICE_LEN + gap)
    np.testing.assert_array_equal(concat[SLICE_LEN + gap:2 * SLICE_LEN + gap], clips[1])
    assert not concat[SLICE_LEN:SLICE_LEN + gap].any()
    # Replaying the saved z through the export into the same folder needs --overwrite.
    replay = ("--model", export_dir, "--out_dir", str(out), "--z_in", str(tmp_path / "z.npy"))
    refused = run_cli(*replay)
    assert refused.returncode == 1 and "pass --overwrite" in refused.stderr
    replayed = run_cli(*replay, "--overwrite")
    assert replayed.returncode == 0, replayed.stderr
    np.testing.assert_allclose(read_wavs(out / f"wavegan_000{i}.wav" for i in range(3)), clips,
                               atol=PCM_STEP)


def test_cli_interpolates_between_two_seeds(export_dir, tmp_path):
    z_path = tmp_path / "z.npy"
    result = run_cli("--model", export_dir, "--out_dir", str(tmp_path / "walk"),
                     "--interpolate", "3", "--seed", "4", "--z_out", str(z_path))
    assert result.returncode == 0, result.stderr
    assert len(wav_names(tmp_path / "walk")) == 3
    z = np.load(z_path)
    np.testing.assert_array_equal(z[0], latent.sample_z(1, LATENT_DIM, 4)[0])
    np.testing.assert_array_equal(z[2], latent.sample_z(1, LATENT_DIM, 5)[0])


def test_cli_error_is_one_line_with_exit_status_1(tmp_path):
    missing = str(tmp_path / "no_such_run")
    result = run_cli("--model", missing, "--out_dir", str(tmp_path / "out"))
    assert result.returncode == 1
    assert f"error: model path {missing!r} does not exist" in result.stderr
    assert "Traceback" not in result.stderr
    assert not os.path.exists(tmp_path / "out")


def test_cli_help_documents_exactly_the_flags_it_uses():
    result = run_cli("--help")
    assert "generate.py:" in result.stdout, result.stderr
    section = result.stdout.split("generate.py:", 1)[1].split("Try --helpfull", 1)[0]
    flags_listed = re.findall(r"^  --(?:\[no\])?(\w+):", section, flags=re.MULTILINE)
    assert sorted(flags_listed) == sorted(
        ["model", "n", "out_dir", "seed", "batch_size", "z_in", "z_out", "interpolate",
         "concat", "overwrite", "label", "per_class", "web", "tflite", "tflite_weights",
         "tflite_batch", "plot", "plot_data_dir", "list_pretrained"])
    with open(os.path.join(REPO_ROOT, "wavegan_tf", "cli", "generate.py"),
              encoding="utf-8") as f:
        source = f.read()
    for name in flags_listed:
        assert f"FLAGS.{name}" in source, f"--{name} is defined but not used"


def test_model_is_required_unless_listing_pretrained_models():
    result = run_cli()
    assert result.returncode != 0
    assert "--model is required" in result.stderr and "pretrained:NAME" in result.stderr


# -- loading ---------------------------------------------------------------------------------

def test_both_sources_load_with_the_same_facts_and_audio(train_dir, export_dir, generator):
    z = latent.sample_z(5, LATENT_DIM, 0)
    for path in (train_dir, export_dir):
        model = loading.load_model_for_generation(path)
        assert (model.sample_rate, model.latent_dim, model.slice_len, model.num_channels,
                model.step) == (SAMPLE_RATE, LATENT_DIM, SLICE_LEN, 1, 3)
        audio = model.generate(z, batch_size=2)
        assert audio.shape == (5, SLICE_LEN, 1) and audio.dtype == np.float32
        np.testing.assert_allclose(audio, generator(z).numpy(), atol=1e-6)


def test_generate_rejects_z_of_the_wrong_width(export_dir):
    model = loading.load_model_for_generation(export_dir)
    with pytest.raises(ValueError, match=r"latent_dim=8\], got \(2, 5\)"):
        model.generate(np.zeros((2, 5), np.float32))


def test_missing_model_path_is_named(tmp_path):
    missing = str(tmp_path / "nothing")
    with pytest.raises(FileNotFoundError, match=re.escape(f"model path {missing!r} does not")):
        loading.load_model_for_generation(missing)


def test_train_dir_without_checkpoint_says_to_train_first(tmp_path):
    GANConfig(model_dim=2, latent_dim=LATENT_DIM).save(str(tmp_path))
    folder = re.escape(os.path.join(str(tmp_path), "checkpoints"))
    with pytest.raises(FileNotFoundError, match=f"no checkpoint in '{folder}'.*train first"):
        loading.load_model_for_generation(str(tmp_path))


def test_folder_that_is_neither_is_rejected(tmp_path):
    with pytest.raises(ValueError, match="neither a training directory .* nor an exported"):
        loading.load_model_for_generation(str(tmp_path))


class _Doubler(tf.Module):
    @tf.function(input_signature=[tf.TensorSpec([None, 3], tf.float32, name="x")])
    def double(self, x):
        return {"y": 2 * x}


def test_savedmodel_without_serving_default_is_rejected(tmp_path):
    module = _Doubler()
    tf.saved_model.save(module, str(tmp_path), signatures={"predict": module.double})
    with pytest.raises(ValueError, match=r"has no 'serving_default' signature \(it has "
                                         r"\['predict'\]\); expected serving_default\(z"):
        loading.load_model_for_generation(str(tmp_path))


def test_savedmodel_with_another_serving_signature_is_rejected(tmp_path):
    module = _Doubler()
    tf.saved_model.save(module, str(tmp_path), signatures={"serving_default": module.double})
    with pytest.raises(ValueError, match=re.escape(str(tmp_path)) + r".* takes \{'x': "
                                         r"'float32 \(None, 3\)'\} and returns \['y'\]; "
                                         r"expected serving_default\(z: float32"):
        loading.load_model_for_generation(str(tmp_path))


# -- writing clips ---------------------------------------------------------------------------

def test_writes_the_promised_wavs(model_path, tmp_path):
    written = generate_wavs.run_generation(model_path, str(tmp_path), n=2, seed=1)
    assert written == [str(tmp_path / "wavegan_0000.wav"), str(tmp_path / "wavegan_0001.wav")]
    assert wav_names(tmp_path) == ["wavegan_0000.wav", "wavegan_0001.wav"]
    assert read_wavs(written).shape == (2, SLICE_LEN)


def test_default_count_is_16(export_dir, tmp_path):
    generate_wavs.run_generation(export_dir, str(tmp_path))
    assert len(wav_names(tmp_path)) == generation.DEFAULT_NUM_CLIPS == 16


def test_same_seed_same_audio_and_other_seed_other_audio(export_dir, tmp_path):
    first = generate_wavs.run_generation(export_dir, str(tmp_path / "a"), n=2, seed=4)
    again = generate_wavs.run_generation(export_dir, str(tmp_path / "b"), n=2, seed=4,
                                         batch_size=1)
    other = generate_wavs.run_generation(export_dir, str(tmp_path / "c"), n=2, seed=6)
    # A different batch size may round differently in the last bit of a 16-bit sample.
    np.testing.assert_allclose(read_wavs(first), read_wavs(again), atol=PCM_STEP)
    assert not np.allclose(read_wavs(first), read_wavs(other), atol=PCM_STEP)


def test_z_out_then_z_in_reproduces_the_clips(train_dir, tmp_path):
    z_path = str(tmp_path / "z.npy")
    first = generate_wavs.run_generation(train_dir, str(tmp_path / "a"), n=3, seed=2, z_out=z_path)
    assert first[-1] == z_path
    z = np.load(z_path)
    assert z.shape == (3, LATENT_DIM) and z.dtype == np.float32
    edited = str(tmp_path / "edited.npy")
    np.save(edited, z[::-1])
    again = generate_wavs.run_generation(train_dir, str(tmp_path / "b"), z_in=edited,
                                         z_out=str(tmp_path / "z2.npy"))
    np.testing.assert_array_equal(read_wavs(again[:3]), read_wavs(first[:3])[::-1])
    np.testing.assert_array_equal(np.load(tmp_path / "z2.npy"), z[::-1])


@pytest.mark.parametrize("shape, message", [
    ((3, 5), r"must have shape \[n >= 1, latent_dim=8\], got \(3, 5\)"),
    ((8,), r"must hold an array \[n >= 1, latent_dim\], got shape \(8,\)"),
    ((0, 8), r"must hold an array \[n >= 1, latent_dim\], got shape \(0, 8\)"),
])
def test_z_in_of_the_wrong_shape_is_rejected(export_dir, tmp_path, shape, message):
    path = str(tmp_path / "z.npy")
    np.save(path, np.zeros(shape, np.float32))
    with pytest.raises(ValueError, match=re.escape(repr(path)) + ".*" + message):
        generate_wavs.run_generation(export_dir, str(tmp_path / "out"), z_in=path)
    assert not os.path.exists(tmp_path / "out")


def test_z_in_with_non_finite_values_is_rejected(export_dir, tmp_path):
    path = str(tmp_path / "z.npy")
    np.save(path, np.full((2, LATENT_DIM), np.nan, np.float32))
    with pytest.raises(ValueError, match=re.escape(f"z file {path!r} must hold finite numbers")):
        generate_wavs.run_generation(export_dir, str(tmp_path / "out"), z_in=path)


def test_z_in_beyond_float32s_range_is_rejected_not_made_infinite(export_dir, tmp_path):
    path = str(tmp_path / "z.npy")
    z = np.zeros((2, LATENT_DIM), np.float64)
    z[1, 3] = 1e308
    np.save(path, z)
    with pytest.raises(ValueError, match=re.escape(f"z file {path!r} holds values beyond "
                                                   "float32's range (largest magnitude 1e+308)")):
        generate_wavs.run_generation(export_dir, str(tmp_path / "out"), z_in=path)
    assert not os.path.exists(tmp_path / "out")


def test_missing_z_in_is_named(export_dir, tmp_path):
    path = str(tmp_path / "none.npy")
    with pytest.raises(FileNotFoundError, match=re.escape(f"z file {path!r} does not exist")):
        generate_wavs.run_generation(export_dir, str(tmp_path / "out"), z_in=path)


def test_interpolation_runs_from_one_seeds_z_to_the_next(export_dir, tmp_path):
    z_path = str(tmp_path / "z.npy")
    walk = generate_wavs.run_generation(export_dir, str(tmp_path / "walk"), interpolate=5, seed=3,
                                        z_out=z_path)
    assert len(walk) == 6
    z = np.load(z_path)
    np.testing.assert_array_equal(z[0], latent.sample_z(1, LATENT_DIM, 3)[0])
    np.testing.assert_array_equal(z[-1], latent.sample_z(1, LATENT_DIM, 4)[0])
    np.testing.assert_allclose(z[2], (z[0] + z[-1]) / 2, atol=1e-6)
    seeded = generate_wavs.run_generation(export_dir, str(tmp_path / "seeded"), n=1, seed=4)
    np.testing.assert_array_equal(read_wavs(walk[-2:-1]), read_wavs(seeded))


def test_first_clips_do_not_depend_on_the_count():
    np.testing.assert_array_equal(latent.sample_z(2, LATENT_DIM, 9),
                                  latent.sample_z(5, LATENT_DIM, 9)[:2])


def test_existing_files_are_kept_unless_overwrite(export_dir, tmp_path):
    generate_wavs.run_generation(export_dir, str(tmp_path), n=2, seed=0)
    (tmp_path / "wavegan_0001.wav").write_bytes(b"keep me")
    with pytest.raises(FileExistsError, match=re.escape(
            f"{str(tmp_path / 'wavegan_0000.wav')!r} already exists; pass --overwrite")):
        generate_wavs.run_generation(export_dir, str(tmp_path), n=2, seed=1)
    assert (tmp_path / "wavegan_0001.wav").read_bytes() == b"keep me"
    generate_wavs.run_generation(export_dir, str(tmp_path), n=2, seed=1, overwrite=True)
    assert read_wavs([tmp_path / "wavegan_0001.wav"]).shape == (1, SLICE_LEN)


def test_existing_z_out_is_kept_unless_overwrite(export_dir, tmp_path):
    z_path = tmp_path / "z.npy"
    z_path.write_bytes(b"keep me")
    with pytest.raises(FileExistsError, match=re.escape(f"{str(z_path)!r} already exists")):
        generate_wavs.run_generation(export_dir, str(tmp_path / "out"), n=1, z_out=str(z_path))
    assert z_path.read_bytes() == b"keep me"
    assert wav_names(tmp_path / "out") == []


def test_unwritable_out_dir_is_named(export_dir, tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    out_dir = str(blocker / "out")
    with pytest.raises(OSError, match=re.escape(f"cannot write to output directory {out_dir!r}")):
        generate_wavs.run_generation(export_dir, out_dir, n=1)


@pytest.mark.parametrize("options, message", [
    (dict(z_in="z.npy", interpolate=3), "--z_in and --interpolate are exclusive"),
    (dict(n=3, interpolate=3), "--n is not used with --z_in or --interpolate"),
    (dict(n=3, z_in="z.npy"), "--n is not used with --z_in or --interpolate"),
    (dict(n=0), "--n must be >= 1, got 0"),
    (dict(interpolate=1), "--interpolate needs at least 2 clips"),
    (dict(interpolate=-2), "--interpolate needs at least 2 clips"),
    (dict(seed=-1), "--seed must be >= 0, got -1"),
    (dict(batch_size=0), "--batch_size must be >= 1, got 0"),
])
def test_contradictory_or_out_of_range_options_are_rejected(tmp_path, options, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        generate_wavs.run_generation(str(tmp_path / "never_loaded"), str(tmp_path / "out"),
                                     **options)
    assert not os.path.exists(tmp_path / "out")


# -- WAV writing -----------------------------------------------------------------------------

def test_write_wav_clips_out_of_range_samples(tmp_path):
    path = str(tmp_path / "a.wav")
    wav_io.write_wav(path, np.array([-3.0, -0.5, 0.0, 0.5, 3.0], np.float32), 8000)
    audio, rate = soundfile.read(path, dtype="float32")
    assert rate == 8000 and soundfile.info(path).subtype == "PCM_16"
    np.testing.assert_allclose(audio, [-1.0, -0.5, 0.0, 0.5, 32767 / 32768], atol=PCM_STEP)


def test_interrupted_wav_write_keeps_the_old_file_and_no_temp(tmp_path, monkeypatch):
    path = tmp_path / "a.wav"
    path.write_bytes(b"old")

    def half_write_then_fail(file, *args, **kwargs):
        with open(file, "wb") as f:
            f.write(b"RIFF")
        raise RuntimeError("interrupted")

    monkeypatch.setattr(soundfile, "write", half_write_then_fail)
    with pytest.raises(RuntimeError, match="interrupted"):
        wav_io.write_wav(str(path), np.zeros(4, np.float32), 8000)
    assert path.read_bytes() == b"old"
    assert os.listdir(tmp_path) == ["a.wav"]


# -- plots -----------------------------------------------------------------------------------

def test_plot_draws_the_first_clips_beside_real_ones(train_dir, tmp_path):
    from PIL import Image

    from wavegan_tf.audio.demo_data import ensure_demo_dataset

    data_dir = ensure_demo_dataset(str(tmp_path / "drums"), num_clips=4)
    sheet = str(tmp_path / "sheet.png")
    written = generate_wavs.run_generation(train_dir, str(tmp_path / "out"), n=3, seed=1,
                                           plot=sheet, plot_data_dir=data_dir)
    assert written[-1] == sheet and len(written) == 4
    alone = str(tmp_path / "alone.png")
    generate_wavs.run_generation(train_dir, str(tmp_path / "out2"), n=3, seed=1, plot=alone)
    with Image.open(sheet) as image, Image.open(alone) as single:
        pixels = np.asarray(image.convert("L"))
        # Two more panels per row with the real clips; three rows either way.
        assert image.width > 1.8 * single.width and image.height == single.height
    assert image.format == "PNG" and image.height > 3 * 72
    assert pixels.std() > 20 and (pixels < 128).mean() > 0.05


def test_plot_errors_before_anything_is_written(train_dir, tmp_path):
    out = str(tmp_path / "out")
    with pytest.raises(ValueError, match="--plot must name a .png file, got 'sheet.jpg'"):
        generate_wavs.run_generation(train_dir, out, plot="sheet.jpg")
    with pytest.raises(ValueError, match="--plot_data_dir is used only with --plot"):
        generate_wavs.run_generation(train_dir, out, plot_data_dir=str(tmp_path))
    with pytest.raises(FileNotFoundError, match="--plot_data_dir .*nowhere.* is not a folder"):
        generate_wavs.run_generation(train_dir, out, plot=str(tmp_path / "a.png"),
                                     plot_data_dir=str(tmp_path / "nowhere"))
    existing = tmp_path / "old.png"
    existing.write_bytes(b"keep")
    with pytest.raises(FileExistsError, match="old.png"):
        generate_wavs.run_generation(train_dir, out, plot=str(existing))
    assert existing.read_bytes() == b"keep" and not os.path.exists(out + "/wavegan_0000.wav")
