"""Writing generated audio as 16-bit PCM WAV files, atomically, one clip a file or all in one."""

import numpy as np
import soundfile

from wavegan_tf.files.atomic_files import atomic_output_file

WAV_SUBTYPE = "PCM_16"
# Silence after each clip in a concatenated track, as in the original code's previews.
CONCAT_GAP_SECONDS = 0.5


def write_wav(path, audio, sample_rate):
    """Writes float audio ``[time]`` or ``[time, channels]`` in [-1, 1] as a 16-bit PCM WAV.

    Samples outside [-1, 1] are clipped here, so the result does not depend on how the
    installed libsndfile converts out-of-range floats.
    The file appears at ``path`` complete or not at all: it is written under a temporary name
    in the same directory and then renamed.
    """
    audio = np.clip(np.asarray(audio, dtype=np.float32), -1.0, 1.0)
    if audio.ndim not in (1, 2):
        raise ValueError(f"audio must be [time] or [time, channels], got shape {audio.shape}")
    with atomic_output_file(path, suffix=".wav") as tmp:
        soundfile.write(tmp, audio, int(sample_rate), subtype=WAV_SUBTYPE, format="WAV")
    return path


def concatenate_clips(audio, sample_rate):
    """All clips ``[n, time, channels]`` in one ``[n * (time + gap), channels]`` track.

    Each clip is followed by ``CONCAT_GAP_SECONDS`` of silence, as in the original previews.
    """
    gap = int(round(CONCAT_GAP_SECONDS * sample_rate))
    padded = np.pad(audio, ((0, 0), (0, gap), (0, 0)))
    return padded.reshape(-1, audio.shape[-1])
