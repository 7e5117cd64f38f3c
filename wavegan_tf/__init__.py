"""wavegan_tf: WaveGAN (Donahue et al., ICLR 2019) in TensorFlow 2 / Keras 3."""

from wavegan_tf.config import WaveGANConfig
from wavegan_tf.gan import WaveGAN, critic_batches
from wavegan_tf.losses import LOSSES
from wavegan_tf.models import build_discriminator, build_generator
from wavegan_tf.phase_shuffle import PhaseShuffle
from wavegan_tf.specgan_models import (build_audio_generator, build_specgan_discriminator,
                                       build_specgan_generator)
from wavegan_tf.spectrogram import (AudioToSpectrogram, SpectrogramMoments, SpectrogramToAudio,
                                    compute_moments, griffin_lim)

__version__ = "0.1.0"

__all__ = [
    "AudioToSpectrogram",
    "LOSSES",
    "PhaseShuffle",
    "SpectrogramMoments",
    "SpectrogramToAudio",
    "WaveGAN",
    "WaveGANConfig",
    "build_audio_generator",
    "build_discriminator",
    "build_generator",
    "build_specgan_discriminator",
    "build_specgan_generator",
    "compute_moments",
    "critic_batches",
    "griffin_lim",
]
