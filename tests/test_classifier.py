"""Tests of the log-mel front end, the classifier, its training, saving and the training hook."""

import json
import os

import keras
import numpy as np
import pytest
import soundfile as sf

from wavegan_tf.eval import classifier, features, labelled, scoring
from wavegan_tf.nets.models import build_generator

SAMPLE_RATE = 16000
SLICE_LEN = 4096
PITCHES = {"high": 1760.0, "low": 220.0, "mid": 660.0}


def write_tone_folder(root, clips_per_class=20, seed=0):
    """Three classes of short noisy tones of different pitch: ``root/<class>/<i>.wav``."""
    rng = np.random.default_rng(seed)
    for name, pitch in PITCHES.items():
        os.makedirs(os.path.join(root, name), exist_ok=True)
        for i in range(clips_per_class):
            n = int(SAMPLE_RATE * rng.uniform(0.15, 0.3))
            t = np.arange(n) / SAMPLE_RATE
            tone = np.sin(2 * np.pi * pitch * rng.uniform(0.97, 1.03) * t + rng.uniform(0, 6))
            clip = rng.uniform(0.2, 0.9) * tone * np.hanning(n) + 0.01 * rng.normal(size=n)
            sf.write(os.path.join(root, name, f"{i:02d}.wav"), clip.astype(np.float32),
                     SAMPLE_RATE, subtype="PCM_16")
    return str(root)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A small classifier trained once on the tone folder: (results, path, data_dir)."""
    root = tmp_path_factory.mktemp("tones")
    data_dir = write_tone_folder(root / "data")
    path = str(root / "clf" / "tones.keras")
    results = classifier.train_classifier(
        data_dir, path, slice_len=SLICE_LEN, epochs=15, batch_size=8, patience=6, filters=16,
        holdout_fraction=0.2, seed=0, verbose=0)
    return results, path, data_dir


class TestLogMelSpectrogram:
    def test_output_shape_follows_frames_and_bins(self):
        layer = features.LogMelSpectrogram()
        out = layer(np.zeros((2, 16384), np.float32))
        assert tuple(out.shape) == (2, 121, 128)
        assert layer.compute_output_shape((None, 16384)) == (None, 121, 128)

    def test_channel_axis_of_one_gives_the_same_features(self):
        audio = np.random.default_rng(0).normal(size=(2, 4096)).astype(np.float32)
        layer = features.LogMelSpectrogram()
        np.testing.assert_allclose(layer(audio), layer(audio[..., None]), atol=1e-5)

    def test_loudness_does_not_change_the_features(self):
        audio = np.random.default_rng(1).normal(size=(1, 4096)).astype(np.float32) * 0.1
        layer = features.LogMelSpectrogram()
        np.testing.assert_allclose(layer(audio), layer(audio * 7.0), atol=1e-4)

    def test_a_tone_peaks_in_the_mel_bin_of_its_pitch(self):
        t = np.arange(8192) / SAMPLE_RATE
        layer = features.LogMelSpectrogram()
        peaks = [int(np.argmax(np.asarray(layer(np.sin(2 * np.pi * f * t)[None]
                                                .astype(np.float32)))[0].mean(axis=0)))
                 for f in (200.0, 1000.0, 4000.0)]
        assert peaks[0] < peaks[1] < peaks[2]
        edges = np.linspace(*(2595 * np.log10(1 + np.array([40.0, 7800.0]) / 700)), 130)
        centre_hz = 700 * (10 ** (edges[1:-1] / 2595) - 1)
        assert centre_hz[peaks[1]] == pytest.approx(1000.0, rel=0.1)

    def test_config_round_trip(self):
        layer = features.LogMelSpectrogram(sample_rate=8000, upper_edge_hertz=3900.0,
                                           normalize_peak=False)
        again = features.LogMelSpectrogram.from_config(layer.get_config())
        assert again.get_config() == layer.get_config()

    def test_an_upper_edge_past_nyquist_is_rejected(self):
        with pytest.raises(ValueError, match="upper_edge_hertz=7800.0"):
            features.LogMelSpectrogram(sample_rate=8000)


class TestFitLength:
    def test_long_clips_keep_their_beginning_and_short_ones_are_padded(self):
        np.testing.assert_array_equal(features.fit_length(np.arange(6.0), 4), [0, 1, 2, 3])
        np.testing.assert_array_equal(features.fit_length(np.ones(2), 4), [1, 1, 0, 0])

    def test_channels_are_averaged(self):
        stereo = np.stack([np.ones(4), np.zeros(4)], axis=1)
        np.testing.assert_allclose(features.fit_batch(stereo[None], 4), [[0.5] * 4])


class TestBuildClassifier:
    def test_takes_audio_with_or_without_a_channel_axis(self):
        model = classifier.build_classifier(3, slice_len=SLICE_LEN, filters=4)
        audio = np.random.default_rng(0).normal(size=(2, SLICE_LEN)).astype(np.float32)
        assert tuple(model(audio).shape) == (2, 3)
        np.testing.assert_allclose(model(audio), model(audio[..., None]), atol=1e-5)

    def test_paper_sized_model_has_four_conv_blocks_of_128_filters(self):
        model = classifier.build_classifier(10)
        convs = [layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]
        assert [(c.filters, c.kernel_size) for c in convs] == [(128, (5, 5))] * 4
        assert model.get_layer("log_mel").num_mel_bins == 128
        assert model.output_shape == (None, 10)

    def test_a_slice_shorter_than_the_stft_window_is_rejected(self):
        with pytest.raises(ValueError, match="slice_len=512"):
            classifier.build_classifier(3, slice_len=512)


class TestTraining:
    def test_reaches_high_held_out_accuracy_on_tones(self, trained):
        results, _, _ = trained
        assert results["test_accuracy"] >= 0.9
        assert results["valid_accuracy"] >= 0.9
        assert results["class_names"] == sorted(PITCHES)
        # 20 clips per class, 20% held out twice: 4 + 4 per class
        assert (results["num_train"], results["num_valid"], results["num_test"]) == (36, 12, 12)

    def test_real_clips_of_three_balanced_classes_score_near_three(self, trained):
        results, _, _ = trained
        assert 2.5 <= results["test_inception_score"] <= 3.0

    def test_saved_classifier_loads_in_safe_mode_with_its_class_names(self, trained):
        results, path, _ = trained
        loaded = classifier.load_classifier(path)
        assert loaded.class_names == sorted(PITCHES)
        assert (loaded.sample_rate, loaded.slice_len) == (SAMPLE_RATE, SLICE_LEN)
        with open(path + ".json", encoding="utf-8") as f:
            assert json.load(f)["test_accuracy"] == results["test_accuracy"]
        model = keras.saving.load_model(path, safe_mode=True)
        t = np.arange(SLICE_LEN) / SAMPLE_RATE
        tones = np.stack([np.sin(2 * np.pi * PITCHES[name] * t) for name in loaded.class_names])
        predicted = np.argmax(model(tones[..., None].astype(np.float32)), axis=1)
        np.testing.assert_array_equal(predicted, [0, 1, 2])
        np.testing.assert_allclose(loaded.predict_proba(tones).sum(axis=1), 1.0, rtol=1e-5)

    def test_split_folders_are_used_as_splits(self, tmp_path):
        for split, count in (("train", 6), ("valid", 2), ("test", 3)):
            write_tone_folder(tmp_path / split, clips_per_class=count, seed=len(split))
        data = labelled.load_labelled_audio(str(tmp_path), SLICE_LEN, SAMPLE_RATE)
        assert data.layout == "train/valid/test folders"
        assert (len(data.train), len(data.valid), len(data.test)) == (18, 6, 9)
        assert data.train.audio.shape == (18, SLICE_LEN)
        assert all("/test/" in p for p in data.test.paths)

    def test_a_split_folder_with_an_unknown_class_is_rejected(self, tmp_path):
        write_tone_folder(tmp_path / "train", clips_per_class=3)
        os.makedirs(tmp_path / "test" / "extra")
        with pytest.raises(ValueError, match=r"\['extra'\]"):
            labelled.load_labelled_audio(str(tmp_path), SLICE_LEN, SAMPLE_RATE)

    def test_a_single_class_is_rejected(self, tmp_path):
        os.makedirs(tmp_path / "only")
        with pytest.raises(ValueError, match="at least 2"):
            labelled.load_labelled_audio(str(tmp_path), SLICE_LEN, SAMPLE_RATE)

    def test_a_non_keras_output_path_is_rejected_before_reading_data(self, tmp_path):
        with pytest.raises(ValueError, match="clf.h5"):
            classifier.train_classifier(str(tmp_path / "missing"), str(tmp_path / "clf.h5"))


class TestLoadClassifier:
    def test_a_missing_file_is_named(self, tmp_path):
        with pytest.raises(FileNotFoundError, match="nope.keras"):
            classifier.load_classifier(str(tmp_path / "nope.keras"))

    def test_a_missing_class_name_file_is_named(self, trained, tmp_path):
        _, path, _ = trained
        copy = tmp_path / "copy.keras"
        copy.write_bytes(open(path, "rb").read())
        with pytest.raises(FileNotFoundError, match="copy.keras.json"):
            classifier.load_classifier(str(copy))


class TestMakeEvalFn:
    def test_scores_a_generator_reproducibly_against_a_reference(self, trained):
        _, path, data_dir = trained
        eval_fn = scoring.make_eval_fn(path, n=40, seed=3, splits=2, reference_dir=data_dir,
                                       ndb_bins=4, nn_samples=20, batch_size=16)
        generator = build_generator(latent_dim=8, model_dim=2, slice_len=16384)
        first, second = eval_fn(generator), eval_fn(generator)
        assert first == second
        assert 1.0 <= first["inception_score"] <= 3.0
        assert first["n"] == 40 and first["nn_samples"] == 20 and first["ndb_bins"] == 4
        assert first["fid"] > 0 and first["d_train"] > 0 and 0 <= first["ndb"] <= 4

    def test_without_a_reference_only_the_inception_score_is_computed(self, trained):
        _, path, _ = trained
        eval_fn = scoring.make_eval_fn(path, n=10, splits=1)
        result = eval_fn(build_generator(latent_dim=8, model_dim=2))
        assert set(result) == {"inception_score", "inception_score_std", "n", "splits"}

    def test_more_splits_than_clips_are_rejected(self, trained):
        _, path, _ = trained
        with pytest.raises(ValueError, match="splits=20"):
            scoring.make_eval_fn(path, n=10, splits=20)
