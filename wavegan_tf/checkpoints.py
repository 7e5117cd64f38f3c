"""Layout of a training directory and the checkpoint format inside it.

A training directory holds ``config.json`` (the :class:`~wavegan_tf.config.WaveGANConfig`) and
``checkpoints/`` (``tf.train.Checkpoint`` files managed by ``tf.train.CheckpointManager``). A
checkpoint stores G, D, both optimizers, the generator-step counter and the trainer's RNG state,
under the object names below, so that any part (for example G alone, for export) can be restored.
"""

import os

import tensorflow as tf

from wavegan_tf.config import WaveGANConfig

CHECKPOINT_SUBDIR = "checkpoints"
CHECKPOINT_PREFIX = "ckpt"


def checkpoint_dir(train_dir):
    return os.path.join(train_dir, CHECKPOINT_SUBDIR)


def make_checkpoint(gan, step):
    """A ``tf.train.Checkpoint`` of a compiled WaveGAN and an int64 step variable."""
    return tf.train.Checkpoint(
        generator=gan.generator,
        discriminator=gan.discriminator,
        g_optimizer=gan.g_optimizer,
        d_optimizer=gan.d_optimizer,
        step=step,
        seed_state=gan.seed_generator.state,
    )


def latest_checkpoint(train_dir):
    """Path prefix of the newest checkpoint in ``train_dir``, or None if there is none."""
    return tf.train.latest_checkpoint(checkpoint_dir(train_dir))


def load_generator(train_dir):
    """Rebuilds G from ``train_dir``'s config and restores it from the newest checkpoint.

    Returns ``(config, generator, step)``. Raises FileNotFoundError naming the directory when it
    has no config or no checkpoint.
    """
    config = WaveGANConfig.load(train_dir)
    path = latest_checkpoint(train_dir)
    if path is None:
        raise FileNotFoundError(
            f"no checkpoint in {checkpoint_dir(train_dir)!r}: train first (train.py "
            f"--train_dir {train_dir}) or wait for the first save")
    generator = config.build_generator()
    step = tf.Variable(0, dtype=tf.int64)
    tf.train.Checkpoint(generator=generator, step=step).restore(path).expect_partial()
    return config, generator, int(step.numpy())
