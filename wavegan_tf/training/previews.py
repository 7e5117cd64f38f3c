"""Listening to a run while it trains: clips of G from one fixed set of z vectors.

The preview z is drawn once per training directory, from the run's seed, and kept as
``preview_z.npy``; a resumed run reads it back and never redraws it, so previews of different
steps differ only through training. It is drawn exactly as ``generate.py --seed SEED --n N`` draws
z, so those clips can be regenerated from any checkpoint or export of the run.

Each preview is one file, ``previews/step_<N>.wav``: the clips in z order, each followed by
half a second of silence, as 16-bit PCM at the run's sample rate. It is written under a temporary
name and then renamed, so a reader never sees half a file.

A conditional run previews every class with the same z: the first
:func:`preview_clips_per_class` rows of the preview z for each class in label order (the clips
of ``generate.py --per_class K --seed SEED``), so the labels are the only difference between
the classes' clips. TensorBoard shows them as ``generated/<class>``.

Beside the audio, TensorBoard gets a log-mel spectrogram image of every clip
(:func:`wavegan_tf.audio.plots.spectrogram_images`) under the same tag with ``_spectrogram`` added:
``generated_spectrogram`` (``generated_spectrogram/<class>``) and ``real_spectrogram``.
"""

import os

import numpy as np
import tensorflow as tf

from wavegan_tf.audio import plots, wav_io
from wavegan_tf.nets import latent
from wavegan_tf.training.callbacks import TrainingDiverged

NUM_PREVIEW_CLIPS = 8
PREVIEW_Z_FILENAME = "preview_z.npy"
PREVIEWS_SUBDIR = "previews"


def preview_clips_per_class(num_classes, num_clips=NUM_PREVIEW_CLIPS):
    """Clips per class in a conditional preview: the preview z shared out, at least one."""
    return max(1, num_clips // num_classes)


def preview_z_path(train_dir):
    return os.path.join(train_dir, PREVIEW_Z_FILENAME)


def preview_path(train_dir, step):
    """``train_dir/previews/step_<step>.wav``."""
    return os.path.join(train_dir, PREVIEWS_SUBDIR, f"step_{int(step)}.wav")


def load_or_create_preview_z(train_dir, latent_dim, seed, num_clips=NUM_PREVIEW_CLIPS):
    """The run's preview z ``[num_clips, latent_dim]``: read from ``preview_z.npy`` if present.

    A new file is drawn with :func:`wavegan_tf.nets.latent.sample_z` from ``seed`` and written
    atomically. An existing file with the wrong width is an error rather than being replaced.
    """
    path = preview_z_path(train_dir)
    if os.path.exists(path):
        return latent.check_z(latent.load_z(path), latent_dim, source=path)
    z = latent.sample_z(num_clips, latent_dim, seed)
    latent.save_z(path, z)
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
        class_names: the classes of a conditional G (called with ``[z, label]``), else None.
    """

    def __init__(self, generator, z, train_dir, sample_rate, writer, real, class_names=None):
        self.generator = generator
        self.class_names = None if class_names is None else list(class_names)
        self.inputs = tf.constant(z)
        if self.class_names is not None:
            per_class = preview_clips_per_class(len(self.class_names), len(z))
            classes = len(self.class_names)
            self.inputs = [tf.constant(np.tile(np.asarray(z)[:per_class], (classes, 1))),
                           tf.constant(np.repeat(np.arange(classes, dtype=np.int32), per_class))]
        self.train_dir = train_dir
        self.sample_rate = int(sample_rate)
        self.writer = writer
        self.real = real
        self.last_step = None

    def write(self, step):
        """Writes ``previews/step_<step>.wav`` and the audio summaries; returns the WAV path.

        Raises TrainingDiverged, writing nothing, when G's output is not finite.
        """
        audio = self.generator(self.inputs, training=False).numpy()
        if not np.all(np.isfinite(audio)):
            raise TrainingDiverged(f"the generated preview audio holds NaN or infinite values "
                                   f"at step {step}")
        audio = np.clip(audio, -1.0, 1.0)
        path = preview_path(self.train_dir, step)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        wav_io.write_wav(path, wav_io.concatenate_clips(audio, self.sample_rate),
                         self.sample_rate)
        with self.writer.as_default():
            if self.class_names is None:
                self._summarise(audio, step, "generated", "generated_spectrogram")
            else:
                for name, clips in zip(self.class_names,
                                       np.split(audio, len(self.class_names))):
                    self._summarise(clips, step, f"generated/{name}",
                                    f"generated_spectrogram/{name}")
            self._summarise(self.real, step, "real", "real_spectrogram")
        self.writer.flush()
        self.last_step = int(step)
        return path

    def _summarise(self, clips, step, audio_tag, image_tag):
        """The clips as TensorBoard audio and their log-mel spectrograms as images."""
        tf.summary.audio(audio_tag, clips, self.sample_rate, step=step, max_outputs=len(clips))
        tf.summary.image(image_tag, plots.spectrogram_images(clips, self.sample_rate),
                         step=step, max_outputs=len(clips))
