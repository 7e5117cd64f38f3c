"""SpecGAN's spectrogram transform, its Griffin-Lim inverse and the per-bin moments."""

import json

import keras
import numpy as np
import pytest
import tensorflow as tf

from wavegan_tf import (AudioToSpectrogram, SpectrogramMoments, SpectrogramToAudio,
                        compute_moments, griffin_lim)
from wavegan_tf.audio import spectrogram as sp


def _clip(seed=0, n=16384, sample_rate=16000):
    """A real-ish clip: a decaying tone, a chirp and a little noise, ``[1, n, 1]``."""
    t = np.arange(n) / sample_rate
    rng = np.random.default_rng(seed)
    x = (0.5 * np.sin(2 * np.pi * 440 * t) * np.exp(-3 * t)
         + 0.3 * np.sin(2 * np.pi * 1234 * t * (1 + t)) + 0.02 * rng.standard_normal(n))
    return x.astype(np.float32)[None, :, None]


def _moments():
    return compute_moments([_clip(0), 0.5 * _clip(1)])


def test_16384_samples_give_a_128_by_128_image_in_unit_range():
    moments = _moments()
    image = sp.audio_to_spectrogram(_clip(), moments.mean, moments.std)
    assert tuple(image.shape) == (1, 128, 128, 1)
    assert float(tf.reduce_min(image)) >= -1.0 and float(tf.reduce_max(image)) <= 1.0


def test_moments_are_the_per_bin_mean_and_std_of_the_log_magnitudes():
    clips = [_clip(0), 0.5 * _clip(1)]
    frames = np.concatenate([sp.log_magnitude(c).numpy().reshape(-1, 128) for c in clips])
    moments = compute_moments(clips)
    np.testing.assert_allclose(moments.mean, frames.mean(axis=0), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(moments.std, frames.std(axis=0), rtol=1e-4, atol=1e-5)
    assert moments.num_frames == 256


def test_normalisation_undone_gives_the_magnitudes_back_where_not_clipped():
    moments = _moments()
    clip = _clip()
    image = sp.audio_to_spectrogram(clip, moments.mean, moments.std)
    magnitude = sp.spectrogram_to_magnitude(image, moments.mean, moments.std).numpy()
    original = np.abs(tf.signal.stft(clip[..., 0], 256, 128, pad_end=True).numpy())
    assert magnitude.shape == original.shape == (1, 128, 129)
    np.testing.assert_array_equal(magnitude[..., 128], 0.0)
    unclipped = np.abs(image.numpy()[..., 0]) < 0.999
    np.testing.assert_allclose(magnitude[..., :128][unclipped],
                               original[..., :128][unclipped] + sp.LOG_EPS, rtol=1e-3)


def test_griffin_lim_audio_has_a_spectrogram_close_to_the_original():
    moments = _moments()
    image = sp.audio_to_spectrogram(_clip(), moments.mean, moments.std)
    errors = {}
    for iterations in (0, 16):
        audio = sp.spectrogram_to_audio(image, moments.mean, moments.std, iterations)
        assert tuple(audio.shape) == (1, 16384, 1)
        again = sp.audio_to_spectrogram(audio, moments.mean, moments.std)
        errors[iterations] = float(tf.reduce_mean(tf.abs(again - image)))
    # Zero phase is far off; 16 iterations come within a few percent of the image range.
    assert errors[16] < 0.1 < errors[0]
    assert errors[16] < errors[0] / 4


def test_griffin_lim_keeps_the_level_of_the_original():
    clip = _clip()
    magnitude = tf.abs(tf.signal.stft(clip[..., 0], 256, 128, pad_end=True))
    audio = griffin_lim(magnitude, 16, length=16384).numpy()
    rms = np.sqrt(np.mean(np.square(audio)))
    assert rms == pytest.approx(np.sqrt(np.mean(np.square(clip))), rel=0.1)


def test_layers_match_the_functions_and_round_trip_their_config():
    moments = _moments()
    clip = tf.constant(_clip())
    forward = AudioToSpectrogram(moments)
    inverse = SpectrogramToAudio(moments, griffin_lim_iters=3)
    image = forward(clip)
    np.testing.assert_allclose(image, sp.audio_to_spectrogram(clip, moments.mean, moments.std),
                               atol=1e-6)
    assert tuple(forward.compute_output_shape((None, 16384, 1))) == (None, 128, 128, 1)
    assert tuple(inverse.compute_output_shape((None, 128, 128, 1))) == (None, 16384, 1)
    copy = SpectrogramToAudio.from_config(inverse.get_config())
    assert copy.griffin_lim_iters == 3
    copy.set_weights(inverse.get_weights())
    np.testing.assert_allclose(copy(image), inverse(image), atol=1e-5)


def test_layer_moments_are_saved_with_a_keras_model(tmp_path):
    moments = _moments()
    inputs = keras.Input((16384, 1))
    model = keras.Model(inputs, AudioToSpectrogram(moments, name="to_image")(inputs))
    path = str(tmp_path / "m.keras")
    model.save(path)
    loaded = keras.saving.load_model(path)
    restored = loaded.get_layer("to_image").moments()
    np.testing.assert_allclose(restored.mean, moments.mean)
    np.testing.assert_allclose(restored.std, moments.std)


def test_griffin_lim_iters_must_be_positive():
    with pytest.raises(ValueError, match="griffin_lim_iters=0"):
        SpectrogramToAudio(griffin_lim_iters=0)


def test_moments_file_round_trips(tmp_path):
    moments = _moments()
    path = moments.save(str(tmp_path / sp.MOMENTS_FILENAME))
    loaded = SpectrogramMoments.load(path)
    np.testing.assert_array_equal(loaded.mean, moments.mean)
    np.testing.assert_array_equal(loaded.std, moments.std)
    assert loaded.num_frames == moments.num_frames


@pytest.mark.parametrize("change, message", [
    (lambda v: v.update(mean=v["mean"][:64]), "128 finite mean values"),
    (lambda v: v.update(std=[0.0] * 128), "std > 0"),
    (lambda v: v.update(hop_len=64), "hop_len=64"),
    (lambda v: v.pop("std"), "'std'"),
])
def test_a_moments_file_that_does_not_match_is_named(tmp_path, change, message):
    path = _moments().save(str(tmp_path / sp.MOMENTS_FILENAME))
    with open(path, encoding="utf-8") as f:
        values = json.load(f)
    change(values)
    with open(path, "w", encoding="utf-8") as f:
        json.dump(values, f)
    with pytest.raises(ValueError, match=message) as err:
        SpectrogramMoments.load(path)
    assert path in str(err.value)


def test_a_bin_constant_over_the_data_gets_a_finite_normalisation():
    moments = compute_moments([np.zeros((2, 16384, 1), np.float32)])
    assert np.all(moments.std == sp.MIN_STD)
    image = sp.audio_to_spectrogram(np.zeros((1, 16384, 1), np.float32), moments.mean,
                                    moments.std)
    np.testing.assert_array_equal(image, 0.0)
