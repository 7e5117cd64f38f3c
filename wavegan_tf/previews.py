"""Listening to a run while it trains: clips of G from one fixed set of z vectors.

The preview z is drawn once per training directory, from the run's seed, and kept as
``preview_z.npy``; a resumed run reads it back and never redraws it, so previews of different
steps differ only through training. It is drawn exactly as ``generate.py --seed SEED --n N`` draws
z, so those clips can be regenerated from any checkpoint or export of the run.

Each preview is one file, ``previews/step_<N>.wav``: the clips in z order, each followed by
half a second of silence, as 16-bit PCM at the run's sample rate. It is written under a temporary
name and then renamed, so a reader never sees half a file.
"""

import os

import numpy as np
import tensorflow as tf

from wavegan_tf import generation, wav_io
from wavegan_tf.callbacks import TrainingDiverged

NUM_PREVIEW_CLIPS = 8
PREVIEW_Z_FILENAME = "preview_z.npy"
PREVIEWS_SUBDIR = "previews"


def preview_z_path(train_dir):
    return os.path.join(train_dir, PREVIEW_Z_FILENAME)


def preview_path(train_dir, step):
    """``train_dir/previews/step_<step>.wav``."""
    return os.path.join(train_dir, PREVIEWS_SUBDIR, f"step_{int(step)}.wav")


def load_or_create_preview_z(train_dir, latent_dim, seed, num_clips=NUM_PREVIEW_CLIPS):
    """The run's preview z ``[num_clips, latent_dim]``: read from ``preview_z.npy`` if present.

    A new file is drawn with :func:`wavegan_tf.generation.sample_z` from ``seed`` and written
    atomically. An existing file with the wrong width is an error rather than being replaced.
    """
    path = preview_z_path(train_dir)
    if os.path.exists(path):
        return generation.check_z(generation.load_z(path), latent_dim, source=path)
    z = generation.sample_z(num_clips, latent_dim, seed)
    generation.save_z(path, z)
    return z


class Previewer:
    """Writes the preview WAV and TensorBoard audio of G at a step.

    Args:
        generator: G, called with ``training=False``.
        z: the fixed preview z.
        train_dir: where ``previews/`` goes.
        sample_rate: of the WAV files and audio summaries.
        writer: a ``tf.summary`` writer for the ``generated`` and ``real`` audio summaries.
        real: a few real training clips ``[n, time, channels]``, logged beside every preview so
            that TensorBoard shows them for comparison at each step.
    """

    def __init__(self, generator, z, train_dir, sample_rate, writer, real):
        self.generator = generator
        self.z = tf.constant(z)
        self.train_dir = train_dir
        self.sample_rate = int(sample_rate)
        self.writer = writer
        self.real = real
        self.last_step = None

    def write(self, step):
        """Writes ``previews/step_<step>.wav`` and the audio summaries; returns the WAV path.

        Raises TrainingDiverged, writing nothing, when G's output is not finite.
        """
        audio = self.generator(self.z, training=False).numpy()
        if not np.all(np.isfinite(audio)):
            raise TrainingDiverged(f"the generated preview audio holds NaN or infinite values "
                                   f"at step {step}")
        audio = np.clip(audio, -1.0, 1.0)
        path = preview_path(self.train_dir, step)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        wav_io.write_wav(path, generation.concatenate_clips(audio, self.sample_rate),
                         self.sample_rate)
        with self.writer.as_default():
            tf.summary.audio("generated", audio, self.sample_rate, step=step,
                             max_outputs=len(audio))
            tf.summary.audio("real", self.real, self.sample_rate, step=step,
                             max_outputs=len(self.real))
        self.writer.flush()
        self.last_step = int(step)
        return path
