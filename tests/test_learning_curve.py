"""Learning curves and the quality benchmark (bench/quality.py), end to end at tiny size."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf

from wavegan_tf import runs
from wavegan_tf.serving import export as export_lib
from wavegan_tf.training.config import GANConfig
from wavegan_tf.eval import classifier as classifier_lib
from wavegan_tf.eval import learning_curve

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RATE = 16000
TONES = {"low": 220.0, "mid": 880.0, "high": 3000.0}


def _write_tones(folder, per_class=6, flat=False):
    """Decaying tones, half a second each: one subfolder per pitch (or all in one folder)."""
    rng = np.random.default_rng(0)
    t = np.arange(RATE // 2) / RATE
    for name, freq in TONES.items():
        target = folder if flat else os.path.join(folder, name)
        os.makedirs(target, exist_ok=True)
        for i in range(per_class):
            tone = np.sin(2 * np.pi * freq * (1 + 0.05 * rng.standard_normal()) * t)
            sf.write(os.path.join(target, f"{name}_{i}.wav"),
                     (0.8 * tone * np.exp(-8 * t)).astype("float32"), RATE)
    return str(folder)


def test_variants_name_the_settings_they_turn_on():
    configs = learning_curve.variant_configs(["baseline", "ema", "augment", "ema+augment"],
                                             0.99, ["shift"])
    assert configs == {"baseline": {}, "ema": {"ema_decay": 0.99},
                       "augment": {"augment": ["shift"]},
                       "ema+augment": {"ema_decay": 0.99, "augment": ["shift"]}}
    assert learning_curve.variant_configs(["specgan", "specgan+ema"], 0.9, []) == {
        "specgan": {"model": "specgan"}, "specgan+ema": {"model": "specgan", "ema_decay": 0.9}}
    assert learning_curve.variant_configs(["d32", "specgan+d8+b4"], 0.9, []) == {
        "d32": {"model_dim": 32},
        "specgan+d8+b4": {"model": "specgan", "model_dim": 8, "batch_size": 4}}


@pytest.mark.parametrize("names, message", [
    (["baseline", "r1"], "variants: unknown variant 'r1'"),
    (["ema+ema"], "variants: unknown variant 'ema+ema'"),
    (["d16+d32"], "variants: unknown variant 'd16+d32'"),
    (["d0"], "variants: unknown variant 'd0'"),
    (["bx"], "variants: unknown variant 'bx'"),
    (["ema", "ema"], "variants must name at least one variant, each once"),
])
def test_bad_variants_are_named(names, message):
    with pytest.raises(ValueError) as err:
        learning_curve.variant_configs(names, 0.999, ["gain"])
    assert message in str(err.value)


@pytest.mark.parametrize("steps, minutes", [(0, 0.0), (-1, 5.0), (10, -1.0)])
def test_a_budget_needs_a_positive_limit(steps, minutes):
    with pytest.raises(ValueError, match=f"steps={steps!r}, minutes={minutes!r}"):
        learning_curve.Budget(steps=steps, minutes=minutes)


def test_labelled_layouts_are_recognised(tmp_path):
    classes = _write_tones(tmp_path / "classes", per_class=1)
    flat = _write_tones(tmp_path / "flat", per_class=1, flat=True)
    os.makedirs(tmp_path / "split" / "test")
    os.rename(classes, tmp_path / "split" / "train")
    split = str(tmp_path / "split")
    assert learning_curve.labelled_layout(split) == (os.path.join(split, "train"),
                                                     ["high", "low", "mid"])
    assert learning_curve.labelled_layout(flat) == (flat, None)


CLASSIFIER_SETTINGS = dict(epochs=1, filters=2, slice_len=16384, sample_rate=RATE, seed=0)


def test_a_cached_classifier_is_reused_only_with_every_setting_the_same(tmp_path, monkeypatch):
    folder = _write_tones(tmp_path / "tones", per_class=4)
    path = str(tmp_path / "clf.keras")
    trained = []
    real_train = classifier_lib.train_classifier

    def spy(*args, **kwargs):
        trained.append(args[1])
        return real_train(*args, **kwargs)

    monkeypatch.setattr(classifier_lib, "train_classifier", spy)
    assert learning_curve.ensure_classifier(path, folder, **CLASSIFIER_SETTINGS) == path
    stamp = os.stat(path).st_mtime_ns
    assert learning_curve.ensure_classifier(path, folder, **CLASSIFIER_SETTINGS) == path
    assert trained == [path]
    other = learning_curve.ensure_classifier(path, folder, **dict(CLASSIFIER_SETTINGS, seed=1))
    assert trained == [path, other] and other != path and other.endswith(".keras")
    assert classifier_lib.load_classifier(other).metadata["seed"] == 1
    assert os.stat(path).st_mtime_ns == stamp  # the first one is kept
    assert learning_curve.ensure_classifier(path, folder, **CLASSIFIER_SETTINGS) == path
    assert learning_curve.ensure_classifier(path, folder,
                                            **dict(CLASSIFIER_SETTINGS, seed=1)) == other
    assert len(trained) == 2


@pytest.mark.parametrize("change", [dict(epochs=2), dict(filters=4), dict(slice_len=32768),
                                    dict(sample_rate=8000), dict(seed=3), dict(data_dir="b")])
def test_a_change_of_any_classifier_setting_retrains(tmp_path, monkeypatch, change):
    trained = []

    def fake_train(data_dir, out_path, *, epochs, filters, slice_len, sample_rate, seed,
                   verbose):
        """Records the call and writes the sidecar entries train_classifier writes."""
        trained.append(out_path)
        with open(out_path, "w") as f:
            f.write("model")
        with open(classifier_lib.sidecar_path(out_path), "w") as f:
            json.dump(dict(data_dir=os.path.abspath(data_dir), max_epochs=epochs,
                           filters=filters, slice_len=slice_len, sample_rate=sample_rate,
                           seed=seed, class_names=["a"]), f)

    monkeypatch.setattr(classifier_lib, "train_classifier", fake_train)
    path = str(tmp_path / "clf.keras")
    settings = dict(CLASSIFIER_SETTINGS, data_dir=str(tmp_path / "a"))
    ensure = lambda s: learning_curve.ensure_classifier(path, s.pop("data_dir"), **s)  # noqa
    assert ensure(dict(settings)) == path and ensure(dict(settings)) == path
    changed = dict(settings, **change)
    if "data_dir" in change:
        changed["data_dir"] = str(tmp_path / change["data_dir"])
    other = ensure(dict(changed))
    assert trained == [path, other] and other != path
    assert ensure(dict(changed)) == other and ensure(dict(settings)) == path
    assert len(trained) == 2
    with open(classifier_lib.sidecar_path(other), "w") as f:
        f.write("{not json")  # a damaged sidecar is retrained, not trusted
    assert ensure(dict(changed)) == other and len(trained) == 3


def test_unlabelled_curve_has_statistics_and_stops_at_the_minutes(tmp_path):
    folder = _write_tones(tmp_path / "flat", per_class=2, flat=True)
    real = np.zeros((4, 16384, 1), np.float32)
    real[:, :100] = 0.5
    scorer = learning_curve.CurveScorer(real, RATE, n=4)
    assert scorer.real_scores()["silent_frame_share"] == pytest.approx(63 / 64)
    config = GANConfig(model_dim=2, batch_size=2, n_critic=1, latent_dim=8, kernel_len=5)
    seen = []
    points = runs.train_curve(config, folder, learning_curve.Budget(minutes=1e-6), 2, scorer,
                              report=seen.append)
    assert [p["step"] for p in points] == [0, 1]  # the first step outlasts the budget
    assert seen == points
    assert points[0]["minutes"] == 0 and points[1]["minutes"] > 1e-6
    for point in points:
        assert 0.0 <= point["silent_frame_share"] <= 1.0 and point["centroid_spread"] >= 0
        assert "inception_score" not in point
    assert "wasserstein" in points[1]
    assert scorer.generate(config.build_generator()).shape == (4, 16384, 1)


def test_specgan_curve_scores_the_audio_of_griffin_lim(tmp_path):
    folder = _write_tones(tmp_path / "flat", per_class=2, flat=True)
    scorer = learning_curve.CurveScorer(np.zeros((2, 16384, 1), np.float32), RATE, n=2)
    scored = []

    def spy(generator):
        scored.append((generator.output_shape, generator.get_layer("generator").output_shape))
        return scorer(generator)

    config = GANConfig.for_model("specgan", model_dim=2, batch_size=2, n_critic=1,
                                     latent_dim=8, griffin_lim_iters=1, ema_decay=0.5)
    export = tmp_path / "generators" / "specgan"
    points = runs.train_curve(config, folder, learning_curve.Budget(steps=2), 1, spy,
                              export_dir=str(export))
    assert [p["step"] for p in points] == [0, 1, 2]
    assert export_lib.read_metadata(str(export))["step"] == 2
    assert scored == [((None, 16384, 1), (None, 128, 128, 1))] * 3
    assert all(0.0 <= p["silent_frame_share"] <= 1.0 for p in points)
    assert "wasserstein" in points[-1]


def test_quality_bench_end_to_end(tmp_path):
    data = _write_tones(tmp_path / "tones")
    out = tmp_path / "out"
    proc = subprocess.run(
        [sys.executable, "bench/quality.py", "--data_dir", data, "--out_dir", str(out),
         "--model_dim", "2", "--batch_size", "2", "--steps", "2", "--minutes", "0",
         "--eval_every", "1", "--eval_n", "6", "--classifier_epochs", "1",
         "--classifier_filters", "2", "--variants", "baseline,ema+augment", "--conditional",
         "--ema_decay", "0.5", "--augment", "mask", "--seed", "3",
         "--classifier", str(tmp_path / "clf" / "digits.keras")],
        capture_output=True, text=True, cwd=REPO, timeout=600,
        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"))
    assert proc.returncode == 0, proc.stderr[-3000:]
    last = dict(pair.split("=", 1) for pair in proc.stdout.strip().splitlines()[-1].split())
    for key in ("is", "is_real", "is_ratio", "fid", "steps", "minutes", "label_accuracy",
                "baseline_is", "ema_augment_is", "silent_share", "silent_share_real",
                "centroid_spread", "peak_gflops"):
        assert key in last, key
    assert last["best"] in ("baseline", "ema+augment") and last["steps"] == "2"
    assert float(last["is_ratio"]) == pytest.approx(float(last["is"]) / float(last["is_real"]),
                                                    rel=1e-3)
    report = json.loads((out / "quality.json").read_text())
    assert set(report["curves"]) == {"baseline", "ema+augment"}
    for name, points in report["curves"].items():
        assert [p["step"] for p in points] == [0, 1, 2]
        assert all("label_accuracy" in p and "fid" in p for p in points)
    configs = report["configs"]
    assert (configs["baseline"]["ema_decay"], configs["baseline"]["augment"]) == (0.0, [])
    assert (configs["ema+augment"]["ema_decay"], configs["ema+augment"]["augment"]) == \
        (0.5, ["mask"])
    assert {c["model_dim"] for c in configs.values()} == {2}
    assert {(c["batch_size"], c["seed"], c["conditional"]) for c in configs.values()} == \
        {(2, 3, True)}
    assert report["real"]["inception_score"] >= 1.0 and report["peak_gflops"] > 0
    assert report["complete"] is True
    for name in ("baseline", "ema+augment"):
        config, generator, step = export_lib.load_keras_generator(str(out / "generators" / name))
        assert (config.ema_decay, step) == (configs[name]["ema_decay"], 2)
        audio = generator([np.zeros((1, 100), np.float32), np.zeros((1,), np.int32)])
        assert np.asarray(audio).shape == (1, 16384, 1)
    assert sorted(os.listdir(out / "generators")) == ["baseline", "ema+augment"]
    assert (out / "quality.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert report["classifier"] == str(tmp_path / "clf" / "digits.keras")
    sidecar = json.loads((tmp_path / "clf" / "digits.keras.json").read_text())
    assert (sidecar["max_epochs"], sidecar["filters"]) == (1, 2)
    assert sidecar["class_names"] == ["high", "low", "mid"]
