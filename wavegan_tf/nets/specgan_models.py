"""SpecGAN generator and discriminator as Keras functional models (paper, section 3.4).

SpecGAN is a 2-D DCGAN on the normalised log-magnitude spectrograms of
:mod:`wavegan_tf.audio.spectrogram`: 16384 samples are a ``[128 frames, 128 bins, 1]`` image. G and D
mirror WaveGAN's (:mod:`wavegan_tf.nets.models`) with 5x5 kernels and stride 2 in both axes instead
of length-25 kernels and stride 4, so at d = 64 both have exactly WaveGAN's parameter counts
(G 19,065,345, D 17,427,969). D has no phase shuffle. Shapes in the comments are per example
for d = model_dim = 64.

:func:`build_audio_generator` puts Griffin-Lim after G: a model from z to audio, which is what
previews, evaluation and exports of a SpecGAN run use.
"""

import keras
from keras import layers

from wavegan_tf.audio.spectrogram import GRIFFIN_LIM_ITERS, NUM_BINS, SpectrogramToAudio, num_frames
from wavegan_tf.nets.leaky_relu import LeakyReLU
from wavegan_tf.nets.models import UPSAMPLE_MODES, check_positive

SPECGAN_SLICE_LEN = 16384
SPECGAN_KERNEL_LEN = 5
SPECTROGRAM_SHAPE = (num_frames(SPECGAN_SLICE_LEN), NUM_BINS, 1)
_STRIDE = 2
_LAYERS = 5
# Channels of G's first feature map (and of D's last) in units of model_dim.
_DIM_MUL = 16


def _upconv(x, filters, kernel_len, upsample, name):
    """One 2x upsampling step: a transposed conv, or nearest-neighbour resize then a conv."""
    if upsample == "zeros":
        return layers.Conv2DTranspose(filters, kernel_len, strides=_STRIDE, padding="same",
                                      name=name)(x)
    x = layers.UpSampling2D(_STRIDE, name=f"{name}_nearest")(x)
    return layers.Conv2D(filters, kernel_len, padding="same", name=name)(x)


def build_specgan_generator(latent_dim=100, model_dim=64, kernel_len=SPECGAN_KERNEL_LEN,
                            upsample="zeros", use_batchnorm=False):
    """Builds G: z ``[None, latent_dim]`` -> spectrogram ``[None, 128, 128, 1]`` in [-1, 1].

    Args:
        latent_dim: size of z (100 in the paper; z ~ U(-1, 1)).
        model_dim: d, the width multiplier (64 in the paper).
        kernel_len: side of every square kernel (5 in the paper).
        upsample: "zeros" (transposed convolutions) or "nearest" (nearest-neighbour upsampling
            then a stride-1 convolution).
        use_batchnorm: batch normalisation after the dense layer and each hidden upsampling
            layer (the paper uses none).
    """
    check_positive(latent_dim=latent_dim, model_dim=model_dim, kernel_len=kernel_len)
    if upsample not in UPSAMPLE_MODES:
        raise ValueError(f"upsample must be one of {UPSAMPLE_MODES}, got upsample={upsample!r}")
    side = SPECTROGRAM_SHAPE[0] // _STRIDE**_LAYERS
    x = z = keras.Input((latent_dim,), name="z")
    # [100] -> [4 * 4 * 16d] -> [4, 4, 16d]
    x = layers.Dense(side * side * _DIM_MUL * model_dim, name="z_project")(x)
    x = layers.Reshape((side, side, _DIM_MUL * model_dim), name="z_reshape")(x)
    if use_batchnorm:
        x = layers.BatchNormalization(name="z_project_bn")(x)
    x = layers.ReLU(name="z_project_relu")(x)
    # [4, 4, 16d] -> [8, 8, 8d] -> [16, 16, 4d] -> [32, 32, 2d] -> [64, 64, d] -> [128, 128, 1]
    channels = _DIM_MUL * model_dim
    for i in range(_LAYERS):
        last = i == _LAYERS - 1
        channels //= 2
        x = _upconv(x, 1 if last else channels, kernel_len, upsample, name=f"upconv_{i}")
        if last:
            break
        if use_batchnorm:
            x = layers.BatchNormalization(name=f"upconv_{i}_bn")(x)
        x = layers.ReLU(name=f"upconv_{i}_relu")(x)
    # Outputs stay float32 under a mixed-precision policy.
    spectrogram = layers.Activation("tanh", dtype="float32", name="tanh")(x)
    return keras.Model(z, spectrogram, name="generator")


def build_specgan_discriminator(model_dim=64, kernel_len=SPECGAN_KERNEL_LEN,
                                use_batchnorm=False):
    """Builds D: spectrogram ``[None, 128, 128, 1]`` -> one logit per example ``[None, 1]``.

    Args as in :func:`build_specgan_generator`; batch normalisation follows every convolution
    but the first, as in WaveGAN's D.
    """
    check_positive(model_dim=model_dim, kernel_len=kernel_len)
    x = spectrogram = keras.Input(SPECTROGRAM_SHAPE, name="spectrogram")
    # [128, 128, 1] -> [64, 64, d] -> [32, 32, 2d] -> [16, 16, 4d] -> [8, 8, 8d] -> [4, 4, 16d]
    for i in range(_LAYERS):
        x = layers.Conv2D(model_dim * 2**i, kernel_len, strides=_STRIDE, padding="same",
                          name=f"downconv_{i}")(x)
        if use_batchnorm and i > 0:
            x = layers.BatchNormalization(name=f"downconv_{i}_bn")(x)
        x = LeakyReLU(0.2, name=f"downconv_{i}_lrelu")(x)
    # [4, 4, 16d] -> [256d] -> [1]
    x = layers.Flatten(name="flatten")(x)
    logit = layers.Dense(1, dtype="float32", name="logit")(x)
    return keras.Model(spectrogram, logit, name="discriminator")


def build_audio_generator(generator, moments=None, griffin_lim_iters=GRIFFIN_LIM_ITERS):
    """SpecGAN's G followed by :class:`~wavegan_tf.audio.spectrogram.SpectrogramToAudio`: a model from
    z ``[None, latent_dim]`` to audio ``[None, 16384, 1]``.

    Its weights are G's followed by the moments (mean, std), so ``set_weights`` of another
    such model copies both; ``moments=None`` leaves placeholders to be set that way.
    """
    to_audio = SpectrogramToAudio(moments, griffin_lim_iters, name="spectrogram_to_audio")
    z = keras.Input(generator.inputs[0].shape[1:], name="z")
    return keras.Model(z, to_audio(generator(z)), name="specgan_audio_generator")


def spectrogram_generator(audio_generator):
    """The spectrogram G inside a model of :func:`build_audio_generator`."""
    return audio_generator.get_layer("generator")


def audio_generator_moments(audio_generator):
    """The :class:`~wavegan_tf.audio.spectrogram.SpectrogramMoments` inside a model of
    :func:`build_audio_generator`."""
    return audio_generator.get_layer("spectrogram_to_audio").moments()
