"""Model-free statistics of a set of clips, for audio without labels (drum one-shots).

The inception score and FID need a classifier, which needs labelled audio. These statistics
need nothing and still show two common failures of a young generator:

* :func:`silent_frame_share`: the share of short frames (16 ms) whose peak lies more than 40 dB
  below the peak of their clip. Real one-shots decay into silence and are padded with it; an
  untrained G fills the whole clip with noise, so its share stays far below the real one.
* :func:`spectral_centroids` and their spread (standard deviation over the clips): the
  "brightness" of each clip. A collapsed G makes clips of one colour, a spread far below the
  real clips' one.

Clips are ``[n, time]`` or ``[n, time, channels]`` (mixed to mono) float arrays.
"""

import numpy as np

FRAME_SECONDS = 0.016
SILENCE_DB = 40.0


def _mono(clips):
    clips = np.asarray(clips, np.float64)
    if clips.ndim == 3:
        clips = clips.mean(axis=2)
    if clips.ndim != 2 or clips.shape[1] < 1:
        raise ValueError(f"clips must be [n, time] or [n, time, channels], got {clips.shape}")
    return clips


def frame_length(sample_rate, frame_seconds=FRAME_SECONDS):
    """Samples per frame: ``frame_seconds`` at ``sample_rate``, at least 1."""
    return max(1, int(round(frame_seconds * sample_rate)))


def silent_frame_share(clips, sample_rate, frame_seconds=FRAME_SECONDS, silence_db=SILENCE_DB):
    """Per clip, the share of its whole frames whose peak is ``silence_db`` or more below the
    clip's peak; ``[n]``. An all-zero clip is all silence (share 1)."""
    clips = _mono(clips)
    size = frame_length(sample_rate, frame_seconds)
    frames = clips.shape[1] // size
    if frames < 1:
        raise ValueError(f"clips of {clips.shape[1]} samples are shorter than one frame of "
                         f"{size} samples")
    peaks = np.abs(clips[:, :frames * size]).reshape(len(clips), frames, size).max(axis=2)
    threshold = np.abs(clips).max(axis=1, keepdims=True) * 10.0 ** (-silence_db / 20.0)
    return np.mean(peaks <= threshold, axis=1)


def spectral_centroids(clips, sample_rate):
    """Per clip, the power-weighted mean frequency of its spectrum in Hz; ``[n]``, NaN for an
    all-zero clip."""
    clips = _mono(clips)
    power = np.abs(np.fft.rfft(clips, axis=1)) ** 2
    freqs = np.fft.rfftfreq(clips.shape[1], 1.0 / sample_rate)
    total = power.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total > 0, power @ freqs / total, np.nan)


def clip_statistics(clips, sample_rate):
    """``silent_frame_share`` (mean over the clips), ``centroid_mean`` and ``centroid_spread``
    (mean and standard deviation of the spectral centroids of the non-silent clips, Hz)."""
    centroids = spectral_centroids(clips, sample_rate)
    centroids = centroids[np.isfinite(centroids)]
    return {
        "silent_frame_share": float(np.mean(silent_frame_share(clips, sample_rate))),
        "centroid_mean": float(np.mean(centroids)) if len(centroids) else float("nan"),
        "centroid_spread": float(np.std(centroids)) if len(centroids) else float("nan"),
    }
