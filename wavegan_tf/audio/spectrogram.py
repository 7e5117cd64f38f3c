"""SpecGAN's audio <-> spectrogram transform (paper, section 3.4; the original code's numbers).

Audio to image: an STFT with a 256-sample Hann window and a 128-sample hop (the end zero-padded),
its magnitude without the highest frequency bin (129 -> 128 bins), ``log(mag + 1e-6)``, each
bin standardised with that bin's mean and standard deviation over the training data (the
:class:`SpectrogramMoments`), divided by 3 and clipped to [-1, 1] (so 3 standard deviations
fill the range). 16384 samples give a ``[128 frames, 128 bins, 1]`` image.

Image to audio: the same steps undone (times 3, times std plus mean, exp), the dropped bin put
back as zeros, and the phase estimated by Griffin-Lim: starting from zero phase, each iteration
goes to audio with the inverse STFT and keeps the phase of that audio's STFT with the given
magnitudes. The inverse STFT uses the window that makes ``inverse_stft(stft(x)) == x``
(``tf.signal.inverse_stft_window_fn``), so the audio has the level of the original; the
original code's plain Hann synthesis window scaled its output by a constant instead.

Both directions are Keras layers (:class:`AudioToSpectrogram`, :class:`SpectrogramToAudio`),
which hold the moments as non-trainable weights so that they travel with a saved model, and
plain functions of tensors.
"""

import dataclasses
import json
import math

import keras
import numpy as np
import tensorflow as tf

from wavegan_tf.files.atomic_files import atomic_output_file

WINDOW_LEN = 256
HOP_LEN = 128
# Frequency bins kept: the STFT's 129 without the highest.
NUM_BINS = WINDOW_LEN // 2
LOG_EPS = 1e-6
# Standard deviations mapped to the image range [-1, 1].
CLIP_NSTD = 3.0
GRIFFIN_LIM_ITERS = 16
MOMENTS_FILENAME = "spectrogram_moments.json"
# Smallest standard deviation a bin may have (a bin constant over the data stays finite).
MIN_STD = 1e-6


def num_frames(slice_len):
    """STFT frames of ``slice_len`` samples (the end zero-padded to a whole hop)."""
    return math.ceil(slice_len / HOP_LEN)


def log_magnitude(audio):
    """``log(|STFT| + 1e-6)`` of mono audio ``[batch, time, 1]``: ``[batch, frames, 128]``."""
    stft = tf.signal.stft(tf.cast(audio[..., 0], tf.float32), WINDOW_LEN, HOP_LEN,
                          pad_end=True)
    return tf.math.log(tf.abs(stft[..., :NUM_BINS]) + LOG_EPS)


@dataclasses.dataclass
class SpectrogramMoments:
    """Per-bin mean and standard deviation of the log magnitudes of the training data.

    Attributes:
        mean: float ``[128]``.
        std: float ``[128]``, every value > 0.
        num_frames: how many STFT frames they were computed from (for the record).
    """

    mean: np.ndarray
    std: np.ndarray
    num_frames: int = 0

    def __post_init__(self):
        self.mean = np.asarray(self.mean, dtype=np.float32)
        self.std = np.asarray(self.std, dtype=np.float32)
        for name in ("mean", "std"):
            value = getattr(self, name)
            if value.shape != (NUM_BINS,) or not np.all(np.isfinite(value)):
                raise ValueError(f"spectrogram moments need {NUM_BINS} finite {name} values, "
                                 f"got shape {value.shape}")
        if not np.all(self.std > 0):
            raise ValueError("spectrogram moments need std > 0 in every bin")

    def save(self, path):
        """Writes the moments as JSON, atomically."""
        values = {"window_len": WINDOW_LEN, "hop_len": HOP_LEN, "num_frames": int(self.num_frames),
                  "mean": self.mean.tolist(), "std": self.std.tolist()}
        with atomic_output_file(path) as tmp, open(tmp, "w", encoding="utf-8") as f:
            json.dump(values, f, indent=1)
            f.write("\n")
        return path

    @classmethod
    def load(cls, path):
        """Reads moments written by :meth:`save`; ValueError naming ``path`` when the file is
        unreadable or was made for another transform."""
        try:
            with open(path, encoding="utf-8") as f:
                values = json.load(f)
            if (values.get("window_len"), values.get("hop_len")) != (WINDOW_LEN, HOP_LEN):
                raise ValueError(
                    f"they are for window_len={values.get('window_len')!r}, "
                    f"hop_len={values.get('hop_len')!r}, not {WINDOW_LEN}, {HOP_LEN}")
            return cls(values["mean"], values["std"], values.get("num_frames", 0))
        except FileNotFoundError:
            raise
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as err:
            raise ValueError(f"spectrogram moments file {path!r} does not match SpecGAN's "
                             f"transform ({err!r}); delete it only if no checkpoint was "
                             "trained with it") from err


def compute_moments(batches):
    """The :class:`SpectrogramMoments` over every frame of ``batches`` (audio
    ``[batch, time, 1]`` arrays or tensors), as the original code computes them."""
    total = np.zeros(NUM_BINS)
    total_sq = np.zeros(NUM_BINS)
    count = 0
    for audio in batches:
        frames = log_magnitude(tf.convert_to_tensor(audio)).numpy().reshape(-1, NUM_BINS)
        frames = frames.astype(np.float64)
        total += frames.sum(axis=0)
        total_sq += np.square(frames).sum(axis=0)
        count += len(frames)
    if not count:
        raise ValueError("cannot compute spectrogram moments from no audio")
    mean = total / count
    std = np.sqrt(np.maximum(total_sq / count - np.square(mean), 0.0))
    return SpectrogramMoments(mean, np.maximum(std, MIN_STD), count)


def audio_to_spectrogram(audio, mean, std):
    """Mono audio ``[batch, time, 1]`` -> normalised spectrogram ``[batch, frames, 128, 1]``
    in [-1, 1]."""
    normalised = (log_magnitude(audio) - mean) / std / CLIP_NSTD
    return tf.clip_by_value(normalised, -1.0, 1.0)[..., tf.newaxis]


def spectrogram_to_magnitude(spectrogram, mean, std):
    """Normalised spectrogram ``[batch, frames, 128, 1]`` -> STFT magnitudes
    ``[batch, frames, 129]`` (the highest bin zero)."""
    log_mag = tf.cast(spectrogram[..., 0], tf.float32) * CLIP_NSTD * std + mean
    return tf.pad(tf.exp(log_mag), [[0, 0], [0, 0], [0, 1]])


def griffin_lim(magnitude, iterations=GRIFFIN_LIM_ITERS, length=None):
    """Audio ``[batch, length]`` whose STFT magnitudes approximate ``magnitude``
    ``[batch, frames, 129]``, by ``iterations`` rounds of Griffin-Lim from zero phase."""
    magnitude = tf.cast(magnitude, tf.float32)
    target = tf.complex(magnitude, tf.zeros_like(magnitude))
    inverse_window = tf.signal.inverse_stft_window_fn(HOP_LEN)

    def to_audio(stft):
        return tf.signal.inverse_stft(stft, WINDOW_LEN, HOP_LEN, window_fn=inverse_window)

    def step(i, stft):
        estimate = tf.signal.stft(to_audio(stft), WINDOW_LEN, HOP_LEN)
        phase = estimate / tf.cast(tf.maximum(tf.abs(estimate), 1e-8), tf.complex64)
        return i + 1, target * phase

    _, stft = tf.while_loop(lambda i, _: i < iterations, step, (tf.constant(0), target))
    audio = to_audio(stft)
    return audio if length is None else audio[:, :length]


def spectrogram_to_audio(spectrogram, mean, std, iterations=GRIFFIN_LIM_ITERS):
    """Normalised spectrogram ``[batch, frames, 128, 1]`` -> audio ``[batch, frames * 128, 1]``
    by Griffin-Lim."""
    length = spectrogram.shape[1] * HOP_LEN
    audio = griffin_lim(spectrogram_to_magnitude(spectrogram, mean, std), iterations, length)
    return audio[..., tf.newaxis]


class _MomentsLayer(keras.layers.Layer):
    """A float32 layer holding the moments as non-trainable weights (placeholders of mean 0
    and std 1 until set from ``moments`` or with ``set_weights``)."""

    def __init__(self, moments=None, **kwargs):
        kwargs["dtype"] = "float32"
        super().__init__(**kwargs)
        self.mean = self.add_weight(shape=(NUM_BINS,), initializer="zeros", trainable=False,
                                    name="mean")
        self.std = self.add_weight(shape=(NUM_BINS,), initializer="ones", trainable=False,
                                   name="std")
        if moments is not None:
            self.set_moments(moments)

    def set_moments(self, moments):
        self.mean.assign(moments.mean)
        self.std.assign(moments.std)

    def moments(self):
        """The held moments as :class:`SpectrogramMoments`."""
        return SpectrogramMoments(keras.ops.convert_to_numpy(self.mean),
                                  keras.ops.convert_to_numpy(self.std))

    def get_config(self):
        # The moments are weights, saved and restored with the others.
        return super().get_config()


@keras.saving.register_keras_serializable(package="wavegan_tf")
class AudioToSpectrogram(_MomentsLayer):
    """Mono audio ``[batch, time, 1]`` -> normalised spectrogram ``[batch, frames, 128, 1]``."""

    def call(self, audio):
        return audio_to_spectrogram(audio, self.mean, self.std)

    def compute_output_shape(self, input_shape):
        frames = None if input_shape[1] is None else num_frames(input_shape[1])
        return (input_shape[0], frames, NUM_BINS, 1)


@keras.saving.register_keras_serializable(package="wavegan_tf")
class SpectrogramToAudio(_MomentsLayer):
    """Normalised spectrogram ``[batch, frames, 128, 1]`` -> audio ``[batch, frames * 128, 1]``
    by ``griffin_lim_iters`` iterations of Griffin-Lim."""

    def __init__(self, moments=None, griffin_lim_iters=GRIFFIN_LIM_ITERS, **kwargs):
        if isinstance(griffin_lim_iters, bool) or int(griffin_lim_iters) != griffin_lim_iters \
                or griffin_lim_iters < 1:
            raise ValueError(f"griffin_lim_iters must be a positive integer, got "
                             f"griffin_lim_iters={griffin_lim_iters!r}")
        super().__init__(moments, **kwargs)
        self.griffin_lim_iters = int(griffin_lim_iters)

    def call(self, spectrogram):
        return spectrogram_to_audio(spectrogram, self.mean, self.std, self.griffin_lim_iters)

    def compute_output_shape(self, input_shape):
        length = None if input_shape[1] is None else input_shape[1] * HOP_LEN
        return (input_shape[0], length, 1)

    def get_config(self):
        config = super().get_config()
        config["griffin_lim_iters"] = self.griffin_lim_iters
        return config
