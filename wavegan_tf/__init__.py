"""wavegan_tf: WaveGAN (Donahue et al., ICLR 2019) in TensorFlow 2 / Keras 3.

The names here are the public API: models and their layer (``build_generator``,
``build_discriminator``, ``PhaseShuffle``), SpecGAN's models and spectrogram transform
(``build_specgan_generator``, ``build_specgan_discriminator``, ``build_audio_generator``,
``AudioToSpectrogram``, ``SpectrogramToAudio``, ``SpectrogramMoments``, ``compute_moments``,
``griffin_lim``), the GAN and its settings (``WaveGAN``,
``WaveGANConfig``, ``LOSSES``), the data (``audio_dataset``, ``critic_batches``), a whole run
(``train``), and using a trained one (``load_generator``, ``export_generator``, ``sample_z``,
``interpolate_z``).
"""

from wavegan_tf.checkpoints import load_generator
from wavegan_tf.config import WaveGANConfig
from wavegan_tf.data import audio_dataset
from wavegan_tf.export import export_generator
from wavegan_tf.gan import WaveGAN, critic_batches
from wavegan_tf.generation import interpolate_z, sample_z
from wavegan_tf.losses import LOSSES
from wavegan_tf.models import build_discriminator, build_generator
from wavegan_tf.phase_shuffle import PhaseShuffle
from wavegan_tf.specgan_models import (build_audio_generator, build_specgan_discriminator,
                                       build_specgan_generator)
from wavegan_tf.spectrogram import (AudioToSpectrogram, SpectrogramMoments, SpectrogramToAudio,
                                    compute_moments, griffin_lim)
from wavegan_tf.training import train

__version__ = "0.1.0"

__all__ = [
    "AudioToSpectrogram",
    "LOSSES",
    "PhaseShuffle",
    "SpectrogramMoments",
    "SpectrogramToAudio",
    "WaveGAN",
    "WaveGANConfig",
    "audio_dataset",
    "build_audio_generator",
    "build_discriminator",
    "build_generator",
    "build_specgan_discriminator",
    "build_specgan_generator",
    "compute_moments",
    "critic_batches",
    "export_generator",
    "griffin_lim",
    "interpolate_z",
    "load_generator",
    "sample_z",
    "train",
]
