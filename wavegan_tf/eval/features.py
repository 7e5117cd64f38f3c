"""The classifier's front end: a log-mel spectrogram layer, and clips fitted to one length.

The front end is a Keras layer made of TensorFlow ops (``tf.signal.stft`` and
``tf.signal.linear_to_mel_weight_matrix``), so a saved classifier takes raw audio and needs no
preprocessing code outside the model. Defaults are the paper's: STFT window 1024, hop 128,
128 mel bins over 40-7800 Hz, log magnitude.
"""

import keras
import numpy as np
import tensorflow as tf

FRAME_LENGTH = 1024
FRAME_STEP = 128
NUM_MEL_BINS = 128
LOWER_EDGE_HERTZ = 40.0
UPPER_EDGE_HERTZ = 7800.0
LOG_OFFSET = 1e-6
_PEAK_FLOOR = 1e-8


@keras.saving.register_keras_serializable(package="wavegan_tf")
class LogMelSpectrogram(keras.layers.Layer):
    """Audio ``[batch, time]`` or ``[batch, time, 1]`` -> log-mel ``[batch, frames, mel_bins]``.

    ``frames = 1 + (time - frame_length) // frame_step`` (no padding). With ``normalize_peak``
    each clip is first divided by its peak absolute value, so the features do not depend on
    loudness: generated clips, recorded clips and peak-normalised training data all look alike.
    The layer has no weights.
    """

    def __init__(self, sample_rate=16000, frame_length=FRAME_LENGTH, frame_step=FRAME_STEP,
                 num_mel_bins=NUM_MEL_BINS, lower_edge_hertz=LOWER_EDGE_HERTZ,
                 upper_edge_hertz=UPPER_EDGE_HERTZ, log_offset=LOG_OFFSET, normalize_peak=True,
                 **kwargs):
        super().__init__(**kwargs)
        for name, value in (("sample_rate", sample_rate), ("frame_length", frame_length),
                            ("frame_step", frame_step), ("num_mel_bins", num_mel_bins)):
            if int(value) != value or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {name}={value!r}")
        if not 0.0 <= lower_edge_hertz < upper_edge_hertz <= sample_rate / 2:
            raise ValueError(
                f"need 0 <= lower_edge_hertz < upper_edge_hertz <= sample_rate / 2, got "
                f"lower_edge_hertz={lower_edge_hertz!r}, upper_edge_hertz={upper_edge_hertz!r}, "
                f"sample_rate={sample_rate!r}")
        if log_offset <= 0:
            raise ValueError(f"log_offset must be > 0, got log_offset={log_offset!r}")
        self.sample_rate = int(sample_rate)
        self.frame_length = int(frame_length)
        self.frame_step = int(frame_step)
        self.num_mel_bins = int(num_mel_bins)
        self.lower_edge_hertz = float(lower_edge_hertz)
        self.upper_edge_hertz = float(upper_edge_hertz)
        self.log_offset = float(log_offset)
        self.normalize_peak = bool(normalize_peak)

    def call(self, audio):
        audio = tf.cast(audio, tf.float32)
        if audio.shape.rank == 3:
            audio = tf.squeeze(audio, axis=-1)
        if self.normalize_peak:
            peak = tf.reduce_max(tf.abs(audio), axis=1, keepdims=True)
            audio = audio / tf.maximum(peak, _PEAK_FLOOR)
        stft = tf.signal.stft(audio, self.frame_length, self.frame_step,
                              fft_length=self.frame_length, window_fn=tf.signal.hann_window)
        mel_matrix = tf.signal.linear_to_mel_weight_matrix(
            self.num_mel_bins, self.frame_length // 2 + 1, self.sample_rate,
            self.lower_edge_hertz, self.upper_edge_hertz)
        mel = tf.tensordot(tf.abs(stft), mel_matrix, 1)
        return tf.math.log(mel + self.log_offset)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], num_frames(input_shape[1], self.frame_length, self.frame_step),
                self.num_mel_bins)

    def get_config(self):
        config = super().get_config()
        config.update(sample_rate=self.sample_rate, frame_length=self.frame_length,
                      frame_step=self.frame_step, num_mel_bins=self.num_mel_bins,
                      lower_edge_hertz=self.lower_edge_hertz,
                      upper_edge_hertz=self.upper_edge_hertz, log_offset=self.log_offset,
                      normalize_peak=self.normalize_peak)
        return config


def num_frames(num_samples, frame_length=FRAME_LENGTH, frame_step=FRAME_STEP):
    """STFT frames of a clip of ``num_samples`` (None stays None)."""
    if num_samples is None:
        return None
    return 1 + (int(num_samples) - frame_length) // frame_step


def default_upper_edge(sample_rate):
    """The paper's 7800 Hz, lowered to the Nyquist frequency for low sample rates."""
    return min(UPPER_EDGE_HERTZ, sample_rate / 2)


def fit_length(clip, slice_len):
    """A mono clip ``[time]`` trimmed to its first ``slice_len`` samples or zero-padded to them.

    Multi-channel ``[time, channels]`` audio is averaged to mono first.
    """
    clip = np.asarray(clip, np.float32)
    if clip.ndim == 2:
        clip = clip.mean(axis=1)
    if clip.ndim != 1:
        raise ValueError(f"a clip must be [time] or [time, channels], got shape {clip.shape}")
    if len(clip) >= slice_len:
        return clip[:slice_len]
    return np.pad(clip, (0, slice_len - len(clip)))


def fit_batch(audio, slice_len):
    """``[n, slice_len]`` float32 from ``[n, time]`` or ``[n, time, channels]`` audio."""
    audio = np.asarray(audio, np.float32)
    if audio.ndim not in (2, 3):
        raise ValueError(f"audio must be [n, time] or [n, time, channels], got {audio.shape}")
    if audio.ndim == 3:
        audio = audio.mean(axis=2)
    if audio.shape[1] >= slice_len:
        return np.ascontiguousarray(audio[:, :slice_len])
    return np.pad(audio, ((0, 0), (0, slice_len - audio.shape[1])))
