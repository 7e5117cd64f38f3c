"""wavegan_tf: WaveGAN (Donahue et al., ICLR 2019) in TensorFlow 2 / Keras 3.

The names here are the public API: models and their layer (``build_generator``,
``build_discriminator``, ``PhaseShuffle``), SpecGAN's models and spectrogram transform
(``build_specgan_generator``, ``build_specgan_discriminator``, ``build_audio_generator``,
``AudioToSpectrogram``, ``SpectrogramToAudio``, ``SpectrogramMoments``, ``compute_moments``,
``griffin_lim``), the trainer of both families and its settings (``GANTrainer``, ``GANConfig``,
``LOSSES``; ``WaveGAN`` and ``WaveGANConfig`` are their names before 0.2), the data
(``audio_dataset``, ``critic_batches``), a whole run (``train``), and using a trained one
(``load_generator``, ``export_generator``, ``sample_z``, ``interpolate_z``), and the models
that ship with it (``load_pretrained``, ``pretrained_models``).

The package is arranged by stage, each importing only the stages before it: ``files`` (atomic
writes, locks, JSON), ``cpu`` (convolution formulations, allocator, precision), ``audio``
(decoding, slicing, spectrograms, datasets), ``nets`` (layers and models), ``training``,
``serving`` (loading, generation, exports), ``eval``, ``runs`` (the training loop given its
evaluation and export) and ``cli``.
"""

from wavegan_tf.audio.data import audio_dataset
from wavegan_tf.audio.spectrogram import (
                                          AudioToSpectrogram,
                                          SpectrogramMoments,
                                          SpectrogramToAudio,
                                          compute_moments,
                                          griffin_lim,
)
from wavegan_tf.nets.latent import interpolate_z, sample_z
from wavegan_tf.nets.models import build_discriminator, build_generator
from wavegan_tf.nets.phase_shuffle import PhaseShuffle
from wavegan_tf.nets.specgan_models import (
                                          build_audio_generator,
                                          build_specgan_discriminator,
                                          build_specgan_generator,
)
from wavegan_tf.runs import train
from wavegan_tf.serving.export import export_generator
from wavegan_tf.serving.loading import load_pretrained
from wavegan_tf.serving.pretrained import names as pretrained_models
from wavegan_tf.training.checkpoints import load_generator
from wavegan_tf.training.config import GANConfig
from wavegan_tf.training.feeding import critic_batches
from wavegan_tf.training.gan import GANTrainer
from wavegan_tf.training.losses import LOSSES
from wavegan_tf.version import __version__

WaveGAN = GANTrainer
WaveGANConfig = GANConfig

__all__ = [
    "AudioToSpectrogram",
    "GANConfig",
    "GANTrainer",
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
    "load_pretrained",
    "pretrained_models",
    "sample_z",
    "train",
]
