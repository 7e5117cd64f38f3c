"""Model-free clip statistics: silent-frame share and spectral centroids."""

import numpy as np
import pytest

from wavegan_tf.eval import audio_stats

RATE = 16000
FRAME = 256  # 16 ms at 16 kHz


def _tone(freq, n=RATE, amplitude=0.5):
    return amplitude * np.sin(2 * np.pi * freq * np.arange(n) / RATE)


def test_frames_are_16_ms():
    assert audio_stats.frame_length(RATE) == FRAME
    assert audio_stats.frame_length(44100) == 706


def test_silent_share_counts_frames_40_db_below_the_clip_peak():
    clip = _tone(1000, 8 * FRAME)
    clip[6 * FRAME:] *= 0.009  # -41 dB: silent
    clip[4 * FRAME:5 * FRAME] *= 0.02  # -34 dB: not silent
    clip[5 * FRAME:6 * FRAME] = 0.0
    noise = np.random.default_rng(0).uniform(-1, 1, 8 * FRAME)
    shares = audio_stats.silent_frame_share(np.stack([clip, noise, np.zeros(8 * FRAME)]), RATE)
    np.testing.assert_allclose(shares, [3 / 8, 0.0, 1.0])


def test_silent_share_ignores_a_partial_last_frame_and_mixes_channels():
    clip = np.zeros((1, 2 * FRAME + 10, 2))
    clip[0, :FRAME, 0] = 0.5
    clip[0, :FRAME, 1] = 0.5
    clip[0, -10:, :] = 0.5  # in the partial frame: not counted
    assert audio_stats.silent_frame_share(clip, RATE)[0] == pytest.approx(0.5)


def test_centroid_of_a_tone_is_its_frequency_and_spread_is_their_deviation():
    clips = np.stack([_tone(500), _tone(1500), np.zeros(RATE)])
    centroids = audio_stats.spectral_centroids(clips, RATE)
    np.testing.assert_allclose(centroids[:2], [500, 1500], rtol=1e-3)
    assert np.isnan(centroids[2])
    stats = audio_stats.clip_statistics(clips, RATE)
    assert stats["centroid_mean"] == pytest.approx(1000, rel=1e-3)
    assert stats["centroid_spread"] == pytest.approx(500, rel=1e-3)
    assert stats["silent_frame_share"] == pytest.approx(1 / 3)


@pytest.mark.parametrize("shape", [(3,), (1, 100), (2, 3, 4, 5)])
def test_bad_shapes_are_named(shape):
    with pytest.raises(ValueError, match=r"clips|frame"):
        audio_stats.silent_frame_share(np.zeros(shape), RATE)
