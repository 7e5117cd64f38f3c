"""A conditional run end to end: train.py --conditional, previews, checkpoint, export, generate."""

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import soundfile as sf
import tensorflow as tf
from tensorboard.backend.event_processing import event_accumulator

from wavegan_tf.cli import generate_wavs
from wavegan_tf.nets import latent
from wavegan_tf.serving import export, loading
from wavegan_tf import runs
from wavegan_tf.training import checkpoints, loop, settings
from wavegan_tf.training.config import GANConfig
from wavegan_tf.training.previews import preview_path

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY = dict(model_dim=2, batch_size=2, n_critic=1, latent_dim=8, kernel_len=5)
RATE = 16000
SLICE = 16384
CLASSES = ["high", "low"]
GAP = RATE // 2  # 0.5 s of silence after each preview clip
ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}


def tone_folder(root, freqs, clips=3, seconds=1.1):
    """``root/<class>/tone_<i>.wav``: ``clips`` sine tones per class at its frequency."""
    t = np.arange(int(seconds * RATE)) / RATE
    rng = np.random.default_rng(0)
    for name, freq in freqs.items():
        os.makedirs(os.path.join(root, name), exist_ok=True)
        for i in range(clips):
            phase = rng.uniform(0, 2 * np.pi)
            sf.write(os.path.join(root, name, f"tone_{i}.wav"),
                     0.5 * np.sin(2 * np.pi * freq * t + phase), RATE)
    return str(root)


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    return tone_folder(tmp_path_factory.mktemp("tones"), {"low": 300.0, "high": 3000.0})


@pytest.fixture(scope="module")
def run(tmp_path_factory, data_dir):
    train_dir = str(tmp_path_factory.mktemp("runs") / "run")
    result = runs.train(
        train_dir, dict(TINY, conditional=True),
        dict(data_dir=data_dir, train_steps=2, save_every_steps=0, save_every_secs=0,
             preview_every_steps=0), verbose=0)
    assert result.step == 2 and result.export_dir
    return train_dir


@pytest.fixture(scope="module")
def generator(run):
    return checkpoints.load_generator(run)[1]


def test_class_names_are_saved_with_the_run_and_come_back_from_the_checkpoint(run):
    with open(os.path.join(run, "config.json"), encoding="utf-8") as f:
        saved = json.load(f)
    assert saved["conditional"] is True and saved["class_names"] == CLASSES
    config, generator, step = checkpoints.load_generator(run)
    assert config.class_names == CLASSES and config.num_classes == 2 and step == 2
    assert [t.name for t in generator.inputs] == ["z", "label"]


def test_previews_render_the_same_z_for_every_class(run, generator):
    audio, rate = sf.read(preview_path(run, 2), dtype="float32")
    per_class = 4  # the 8 preview z shared out between 2 classes
    assert rate == RATE and len(audio) == 2 * per_class * (SLICE + GAP)
    z = np.load(os.path.join(run, "preview_z.npy"))[:per_class]
    for index in range(2):
        expected = generator([np.asarray(z), np.full(per_class, index, np.int32)]).numpy()
        start = index * per_class * (SLICE + GAP)
        np.testing.assert_allclose(audio[start:start + SLICE], expected[0, :, 0], atol=2 / 32768)
    acc = event_accumulator.EventAccumulator(os.path.join(run, loop.LOGS_SUBDIR),
                                             size_guidance={"tensors": 0})
    acc.Reload()
    tags = acc.Tags()["tensors"]
    assert {"generated/high", "generated/low", "real", "generated_spectrogram/high",
            "generated_spectrogram/low", "real_spectrogram"} <= set(tags)


def test_resume_on_a_folder_without_the_saved_classes_is_refused(run, tmp_path):
    copy = str(tmp_path / "run")
    subprocess.run(["cp", "-r", run, copy], check=True)
    other = tone_folder(tmp_path / "other", {"low": 300.0, "mid": 1000.0}, clips=2)
    with pytest.raises(FileNotFoundError, match=r"no class subfolder \['high'\]"):
        runs.train(copy, {}, dict(data_dir=other, train_steps=3), verbose=0)


def test_conditional_flag_is_fixed_on_resume(run, tmp_path):
    copy = str(tmp_path / "run")
    subprocess.run(["cp", "-r", run, copy], check=True)
    with pytest.raises(ValueError, match="conditional: saved True, given False"):
        settings.resolve_run(copy, {"conditional": False})


def test_export_holds_the_class_names(run):
    export_dir = os.path.join(run, "export")
    metadata = export.read_metadata(export_dir)
    assert metadata["class_names"] == CLASSES
    assert metadata["signatures"]["serving_default"]["inputs"] == ["z", "label"]
    assert metadata["signatures"]["generate"]["inputs"] == ["n", "seed", "label"]
    assert metadata["config"]["class_names"] == CLASSES


# Runs in a fresh interpreter that imports only TensorFlow and NumPy.
PLAIN_TF_SCRIPT = textwrap.dedent("""
    import json, sys
    import numpy as np
    import tensorflow as tf
    export_dir, z_path, out_path = sys.argv[1:]
    loaded = tf.saved_model.load(export_dir)
    serve = loaded.signatures["serving_default"]
    generate = loaded.signatures["generate"]
    z = tf.constant(np.load(z_path))
    served = serve(z=z, label=tf.constant([0, 1, 1], tf.int32))
    low = generate(n=tf.constant(3), seed=tf.constant(7, tf.int64), label=tf.constant(1))
    high = generate(n=tf.constant(3), seed=tf.constant(7, tf.int64), label=tf.constant(0))
    try:
        serve(z=z, label=tf.constant([0, 1, 2], tf.int32))
        bad_label = "accepted"
    except tf.errors.InvalidArgumentError:
        bad_label = "rejected"
    np.savez(out_path, served=served["audio"].numpy(), low=low["audio"].numpy(),
             low_z=low["z"].numpy(), high=high["audio"].numpy(), high_z=high["z"].numpy())
    print(json.dumps({
        "serving_inputs": {k: [v.dtype.name, v.shape.as_list()]
                           for k, v in serve.structured_input_signature[1].items()},
        "generate_inputs": sorted(generate.structured_input_signature[1]),
        "class_names": [name.decode() for name in loaded.class_names.numpy()],
        "bad_label": bad_label,
        "wavegan_modules": [m for m in sys.modules if m.split(".")[0] == "wavegan_tf"],
    }))
""")


def test_exported_signatures_take_a_label_in_a_process_without_wavegan_tf(
        run, generator, tmp_path):
    z = np.random.default_rng(1).uniform(-1, 1, (3, TINY["latent_dim"])).astype(np.float32)
    z_path, out_path = tmp_path / "z.npy", tmp_path / "out.npz"
    np.save(z_path, z)
    result = subprocess.run(
        [sys.executable, "-c", PLAIN_TF_SCRIPT, os.path.join(run, "export"), str(z_path),
         str(out_path)], capture_output=True, text=True, cwd=tmp_path, timeout=120, env=ENV)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["wavegan_modules"] == []
    assert report["serving_inputs"] == {"z": ["float32", [None, 8]], "label": ["int32", [None]]}
    assert report["generate_inputs"] == ["label", "n", "seed"]
    assert report["class_names"] == CLASSES
    assert report["bad_label"] == "rejected"
    out = np.load(out_path)
    labels = np.array([0, 1, 1], np.int32)
    np.testing.assert_allclose(out["served"], generator([z, labels]).numpy(), atol=1e-6)
    np.testing.assert_array_equal(out["low_z"], out["high_z"])
    np.testing.assert_allclose(out["low"], generator([out["low_z"], np.ones(3, np.int32)]),
                               atol=1e-6)
    assert not np.allclose(out["low"], out["high"])


@pytest.mark.parametrize("source", ["train_dir", "export"])
def test_both_model_forms_load_with_class_names_and_the_same_audio(run, generator, source):
    path = run if source == "train_dir" else os.path.join(run, "export")
    model = loading.load_model_for_generation(path)
    assert model.class_names == CLASSES
    z = latent.sample_z(3, 8, 0)
    np.testing.assert_allclose(model.generate(z, labels=[1, 0, 1]),
                               generator([z, np.array([1, 0, 1], np.int32)]).numpy(), atol=1e-6)
    assert model.label_index("low") == 1 and model.label_index("0") == 0
    with pytest.raises(ValueError, match=r"unknown label 'mid'.*\['high', 'low'\]"):
        model.label_index("mid")
    with pytest.raises(ValueError, match="is conditional: give a label"):
        model.generate(z)


def test_per_class_writes_n_clips_into_a_folder_per_class(run, generator, tmp_path):
    out = tmp_path / "out"
    written = generate_wavs.run_generation(os.path.join(run, "export"), str(out), per_class=2,
                                           seed=5, concat=True)
    for name in CLASSES:
        assert sorted(os.listdir(out / name)) == ["wavegan_0000.wav", "wavegan_0001.wav",
                                                  "wavegan_all.wav"]
    assert len(written) == 6
    z = latent.sample_z(2, 8, 5)
    clip, _ = sf.read(out / "low" / "wavegan_0001.wav", dtype="float32")
    expected = generator([z, np.ones(2, np.int32)]).numpy()[1, :, 0]
    np.testing.assert_allclose(clip, expected, atol=2 / 32768)


def test_label_by_name_or_index_writes_clips_of_that_class(run, tmp_path):
    by_name = generate_wavs.run_generation(run, str(tmp_path / "a"), n=2, label="low", seed=3)
    by_index = generate_wavs.run_generation(run, str(tmp_path / "b"), n=2, label=1, seed=3)
    other = generate_wavs.run_generation(run, str(tmp_path / "c"), n=2, label="high", seed=3)
    read = [np.stack([sf.read(p, dtype="float32")[0] for p in paths])
            for paths in (by_name, by_index, other)]
    np.testing.assert_array_equal(read[0], read[1])
    assert not np.array_equal(read[0], read[2])


@pytest.mark.parametrize(
    "options, message",
    [({"label": "mid"}, r"unknown label 'mid'.*\['high', 'low'\]"),
     ({"label": "5"}, "unknown label '5'"),
     ({}, r"conditional model: give --label \(one of \['high', 'low'\]"),
     ({"label": "low", "per_class": 2}, "exclusive"),
     ({"per_class": 2, "n": 3}, "--n is not used with --per_class"),
     ({"per_class": 0}, "--per_class must be >= 1")],
)
def test_bad_label_options_are_named(run, tmp_path, options, message):
    with pytest.raises(ValueError, match=message):
        generate_wavs.run_generation(run, str(tmp_path / "out"), **options)
    assert not os.path.exists(tmp_path / "out" / "wavegan_0000.wav")


def _unconditional_train_dir(directory):
    config = GANConfig(model_dim=2, latent_dim=8)
    os.makedirs(directory, exist_ok=True)
    config.save(directory)
    tf.train.CheckpointManager(
        checkpoints.make_checkpoint(config.build_gan(), tf.Variable(1, dtype=tf.int64)),
        checkpoints.checkpoint_dir(directory), max_to_keep=1).save()
    return str(directory)


@pytest.mark.parametrize("options, flag", [({"label": "low"}, "--label"),
                                           ({"per_class": 2}, "--per_class")])
def test_label_options_on_an_unconditional_model_are_refused(tmp_path, options, flag):
    plain = _unconditional_train_dir(tmp_path / "plain")
    with pytest.raises(ValueError, match=f"{flag} need a conditional model.*unconditional"):
        generate_wavs.run_generation(plain, str(tmp_path / "out"), **options)


def test_generate_cli_per_class_and_its_errors(run, tmp_path):
    def cli(*args):
        return subprocess.run([sys.executable, os.path.join(REPO_ROOT, "generate.py"), *args],
                              capture_output=True, text=True, timeout=120, env=ENV)

    ok = cli("--model", run, "--per_class", "1", "--out_dir", str(tmp_path / "out"))
    assert ok.returncode == 0, ok.stderr
    assert "wrote 2 files" in ok.stdout
    assert os.listdir(tmp_path / "out" / "high") == ["wavegan_0000.wav"]
    bad = cli("--model", run, "--label", "mid", "--out_dir", str(tmp_path / "bad"))
    assert bad.returncode == 1
    assert bad.stderr.strip().splitlines()[-1].startswith("error: unknown label 'mid'")
    assert "['high', 'low']" in bad.stderr and "Traceback" not in bad.stderr


def test_train_cli_conditional_with_class_names_in_the_given_order(data_dir, tmp_path):
    train_dir = str(tmp_path / "run")
    proc = subprocess.run(
        [sys.executable, os.path.join(REPO_ROOT, "train.py"), "--conditional",
         "--class_names=low,high", f"--data_dir={data_dir}", f"--train_dir={train_dir}",
         "--model_dim=2", "--batch_size=2", "--n_critic=1", "--latent_dim=8", "--kernel_len=5",
         "--train_steps=1", "--save_every_steps=0", "--save_every_secs=0",
         "--preview_every_steps=0", "--noexport"],
        capture_output=True, text=True, cwd=REPO_ROOT, timeout=300, env=ENV)
    assert proc.returncode == 0, proc.stderr
    config = GANConfig.load(train_dir)
    assert config.conditional and config.class_names == ["low", "high"]
    refused = subprocess.run(
        [sys.executable, os.path.join(REPO_ROOT, "train.py"), "--class_names=a,b",
         f"--data_dir={data_dir}", f"--train_dir={tmp_path / 'other'}"],
        capture_output=True, text=True, cwd=REPO_ROOT, timeout=300, env=ENV)
    assert refused.returncode == 1
    assert "needs conditional=True" in refused.stderr
