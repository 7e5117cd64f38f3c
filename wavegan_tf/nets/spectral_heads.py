"""Spectral heads of the waveform discriminator: D's logit gains, for each STFT resolution, the
logit of a small critic that looks at the clip's log-magnitude spectrogram.

The waveform D of the paper has to learn frequency content through 25-tap convolutions; later
audio GANs (MelGAN, HiFi-GAN, UnivNet) judge spectrograms at several resolutions beside the
waveform, which pushes G towards the right spectral envelope early. Each head reads
``log(|STFT|^2 + floor)`` with frames of ``frame_length`` samples and a hop of a quarter of
that (the floor :data:`DYNAMIC_RANGE_DB` below a full-scale sinusoid's bin, which also bounds
the input gradients that the R1 and WGAN-GP penalties see in near-silent frames), treats the
frequency bins as channels, and runs three strided 1-D convolutions over the frames (2d, 4d,
8d filters, LeakyReLU 0.2), a mean over time and a dense logit.

The spectrogram head (:func:`spectrogram_logit`) is a 2-D critic instead: SpecGAN's D in
shape (five 5x5 convolutions of stride 2, d to 16d filters) on the log-magnitude spectrogram
SpecGAN models (256-sample frames, a hop of 128), with a mean over the image and a dense logit.
It judges how energy moves across frequency and time together, the harmonics and formant
motion a digit classifier hears, which the 1-D heads see only as channels.
"""

import keras
import tensorflow as tf
from keras import layers

from wavegan_tf.audio.spectrogram import HOP_LEN, WINDOW_LEN
from wavegan_tf.nets.leaky_relu import LeakyReLU

# The floor added to the squared magnitude before the log, in dB below the bin of a full-scale
# sinusoid (whose Hann-windowed magnitude is frame_length / 4).
DYNAMIC_RANGE_DB = 60.0
HEAD_LAYERS = 3
# The spectrogram head's depth and kernel: SpecGAN D's (its STFT is SpecGAN's too).
SPECTROGRAM_LAYERS, SPECTROGRAM_KERNEL = 5, 5


def check_frame_lengths(frame_lengths, slice_len):
    """The frame lengths as a list of ints; ValueError naming ``spectral_heads`` unless each is
    a power of two from 16 to ``slice_len / 4`` and none repeats."""
    lengths = [int(n) for n in frame_lengths]
    for n in lengths:
        if n < 16 or n & (n - 1) or 4 * n > slice_len:
            raise ValueError(f"spectral_heads: STFT frame lengths must be powers of two from 16 "
                             f"to slice_len / 4 = {slice_len // 4}, got {n}")
    if len(set(lengths)) != len(lengths):
        raise ValueError(f"spectral_heads: each frame length once, got {lengths}")
    return lengths


@keras.saving.register_keras_serializable(package="wavegan_tf")
class LogMagnitudeSTFT(layers.Layer):
    """Mono audio ``[batch, time, channels]`` (channels averaged) to ``log(|STFT|^2 + floor)``
    (see :func:`log_floor`)
    ``[batch, frames, frame_length // 2 + 1]`` with a Hann window and a hop of ``hop_length``
    samples (None: a quarter frame).
    Differentiable twice (the R1 and WGAN-GP penalties differentiate through it)."""

    def __init__(self, frame_length, hop_length=None, **kwargs):
        super().__init__(**kwargs)
        self.frame_length = int(frame_length)
        self.hop_length = None if hop_length is None else int(hop_length)

    def call(self, audio):
        mono = tf.reduce_mean(tf.cast(audio, "float32"), axis=-1)
        hop = self.hop_length or self.frame_length // 4
        spectrum = tf.signal.stft(mono, self.frame_length, hop,
                                  window_fn=tf.signal.hann_window, pad_end=True)
        power = tf.square(tf.math.real(spectrum)) + tf.square(tf.math.imag(spectrum))
        return tf.cast(tf.math.log(power + log_floor(self.frame_length)), self.compute_dtype)

    def get_config(self):
        return {**super().get_config(), "frame_length": self.frame_length,
                "hop_length": self.hop_length}


def log_floor(frame_length):
    """The power added before the log: :data:`DYNAMIC_RANGE_DB` below ``(frame_length / 4)^2``."""
    return (frame_length / 4.0) ** 2 * 10.0 ** (-DYNAMIC_RANGE_DB / 10.0)


def spectral_logit(audio, frame_length, model_dim, name):
    """One head's logit ``[batch, 1]`` for ``audio`` (a Keras tensor)."""
    x = LogMagnitudeSTFT(frame_length, name=f"{name}_stft")(audio)
    for i in range(HEAD_LAYERS):
        x = layers.Conv1D(model_dim * 2 ** (i + 1), 5, strides=2, padding="same",
                          name=f"{name}_conv_{i}")(x)
        x = LeakyReLU(0.2, name=f"{name}_lrelu_{i}")(x)
    x = layers.GlobalAveragePooling1D(name=f"{name}_pool")(x)
    return layers.Dense(1, dtype="float32", name=f"{name}_logit")(x)


def spectrogram_logit(audio, model_dim, name="spectrogram"):
    """The spectrogram head's logit ``[batch, 1]`` for ``audio`` (a Keras tensor of a whole
    number of hops): a 2-D critic on its ``[frames, bins, 1]`` log-magnitude image."""
    frames = audio.shape[1] // HOP_LEN
    bins = WINDOW_LEN // 2 + 1
    x = LogMagnitudeSTFT(WINDOW_LEN, HOP_LEN, name=f"{name}_stft")(audio)
    x = layers.Reshape((frames, bins, 1), name=f"{name}_image")(x)
    for i in range(SPECTROGRAM_LAYERS):
        x = layers.Conv2D(model_dim * 2 ** i, SPECTROGRAM_KERNEL, strides=2, padding="same",
                          name=f"{name}_conv_{i}")(x)
        x = LeakyReLU(0.2, name=f"{name}_lrelu_{i}")(x)
    x = layers.GlobalAveragePooling2D(name=f"{name}_pool")(x)
    return layers.Dense(1, dtype="float32", name=f"{name}_logit")(x)
