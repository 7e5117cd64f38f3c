"""wavegan_tf: WaveGAN (Donahue et al., ICLR 2019) in TensorFlow 2 / Keras 3."""

from wavegan_tf.config import WaveGANConfig
from wavegan_tf.gan import WaveGAN, critic_batches
from wavegan_tf.losses import LOSSES
from wavegan_tf.models import build_discriminator, build_generator
from wavegan_tf.phase_shuffle import PhaseShuffle

__version__ = "0.1.0"

__all__ = [
    "LOSSES",
    "PhaseShuffle",
    "WaveGAN",
    "WaveGANConfig",
    "build_discriminator",
    "build_generator",
    "critic_batches",
]
