"""Exporting a trained generator as a self-describing TensorFlow SavedModel (and a .keras file).

:func:`export_generator` restores G from the newest checkpoint of a training directory and writes
``TRAIN_DIR/export/`` (or another folder), which holds:

* a SavedModel loadable with plain ``tf.saved_model.load`` (no wavegan_tf needed) with two
  signatures, ``serving_default`` (z -> audio) and ``generate`` (count and seed -> audio and z),
  the audio facts as variables on the loaded object (``loaded.sample_rate.numpy()``) and the same
  facts plus the run's config in the asset ``assets/wavegan.json``;
* ``generator.keras``: G alone, for ``keras.saving.load_model``.

A SpecGAN export (``config.model == "specgan"``) has the same signatures: its G is
G followed by Griffin-Lim (:func:`wavegan_tf.nets.specgan_models.build_audio_generator`), so
``serving_default`` maps z to ``{"audio": ...}`` as WaveGAN's does and code that loads one
loads the other. Its spectrogram moments are inside the model and also in the asset
``assets/spectrogram_moments.json`` (named in the metadata as ``spectrogram_moments``).

A class-conditional G (``config.conditional``) is exported with a label in both signatures:
``serving_default`` takes ``z`` float32 ``[None, latent_dim]`` and ``label`` int32 ``[None]``,
``generate`` takes ``n``, ``seed`` and one ``label`` int32 scalar for all ``n`` clips; the class
names, in label order, are the string vector ``loaded.class_names`` and ``class_names`` in the
metadata asset. An unconditional export has neither the label inputs nor ``class_names``.

The folder is written beside its target under a temporary name and renamed into place, so an
interrupted export never leaves a half model there and never loses the previous export. Exports
to the same folder wait for each other, and the next export repairs what a killed one left: a
previous export that was renamed aside is put back if the folder is missing, and temporary
folders are deleted (:func:`wavegan_tf.files.atomic_files.recover_interrupted_replace`). G comes
from the newest checkpoint that reads back completely; with only damaged checkpoints the
export fails with wavegan_tf.training.checkpoints.CorruptCheckpointError naming them.
"""

import json
import os
import tempfile

import keras
import tensorflow as tf

from wavegan_tf.audio.spectrogram import MOMENTS_FILENAME
from wavegan_tf.cpu.bfloat16_support import warn_if_emulated
from wavegan_tf.cpu.dtype_policy import global_dtype_policy
from wavegan_tf.files.atomic_files import atomic_output_dir
from wavegan_tf.nets.specgan_models import audio_generator_moments
from wavegan_tf.serving import pretrained
from wavegan_tf.training.checkpoints import load_generator
from wavegan_tf.training.config import CONFIG_FILENAME, GANConfig
from wavegan_tf.version import __version__

EXPORT_SUBDIR = "export"
KERAS_FILENAME = "generator.keras"
METADATA_FILENAME = "wavegan.json"
SERVING_SIGNATURE = "serving_default"
GENERATE_SIGNATURE = "generate"
# The audio facts stored as attributes of the exported object and in the metadata asset.
AUDIO_ATTRIBUTES = ("sample_rate", "latent_dim", "slice_len", "num_channels")
# Compute precision of an export -> the Keras dtype policy G is rebuilt under. Weights stay
# float32 in the checkpoint; "bfloat16" runs the convolutions in bfloat16 (faster on CPUs with
# AVX512_BF16 and on recent accelerators) while z and audio stay float32.
PRECISIONS = {"float32": "float32", "bfloat16": "mixed_bfloat16"}


def default_export_dir(train_dir):
    return os.path.join(train_dir, EXPORT_SUBDIR)


class GeneratorExport(tf.Module):
    """What the SavedModel holds: G, its audio facts, and the two serving functions.

    Both functions clip the audio to [-1, 1]; G already ends in tanh, so this only matters with
    the post-processing filter, which may leave that range.
    """

    def __init__(self, generator, config, step, metadata_path, precision="float32",
                 moments_path=None):
        super().__init__(name="wavegan_generator")
        self.generator = generator
        self.sample_rate = _constant_variable(config.sample_rate, tf.int32)
        self.latent_dim = _constant_variable(config.latent_dim, tf.int32)
        self.slice_len = _constant_variable(config.slice_len, tf.int32)
        self.num_channels = _constant_variable(config.num_channels, tf.int32)
        self.step = _constant_variable(step, tf.int64)
        self.wavegan_tf_version = _constant_variable(__version__, tf.string)
        self.precision = _constant_variable(precision, tf.string)
        self.metadata = tf.saved_model.Asset(metadata_path)
        if moments_path:
            self.spectrogram_moments = tf.saved_model.Asset(moments_path)
        self._latent_dim = int(config.latent_dim)
        z_spec = tf.TensorSpec([None, config.latent_dim], tf.float32, name="z")
        count_specs = [tf.TensorSpec([], tf.int32, name="n"),
                       tf.TensorSpec([], tf.int64, name="seed")]
        if config.conditional:
            self.class_names = _constant_variable(config.class_names, tf.string)
            self._num_classes = len(config.class_names)
            self.serve = tf.function(
                self._serve_label,
                input_signature=[z_spec, tf.TensorSpec([None], tf.int32, name="label")])
            self.generate = tf.function(
                self._generate_label,
                input_signature=count_specs + [tf.TensorSpec([], tf.int32, name="label")])
        else:
            self.serve = tf.function(self._serve, input_signature=[z_spec])
            self.generate = tf.function(self._generate, input_signature=count_specs)

    def _audio(self, inputs):
        return tf.clip_by_value(self.generator(inputs, training=False), -1.0, 1.0)

    def _serve(self, z):
        """audio = G(z) for z ``[batch, latent_dim]``."""
        return {"audio": self._audio(z)}

    def _serve_label(self, z, label):
        """audio = G(z, label) for z ``[batch, latent_dim]`` and label ``[batch]``."""
        self._check_labels(label)
        return {"audio": self._audio([z, label])}

    def _sample_z(self, n, seed):
        """``n`` z ~ U(-1, 1) drawn statelessly from ``seed`` (same seed, same z)."""
        tf.debugging.assert_non_negative(n, message="n must be >= 0")
        return tf.random.stateless_uniform(
            tf.stack([n, self._latent_dim]), seed=tf.stack([seed, tf.constant(0, tf.int64)]),
            minval=-1.0, maxval=1.0, dtype=tf.float32)

    def _generate(self, n, seed):
        """``n`` clips from z ~ U(-1, 1) drawn statelessly from ``seed`` (same seed, same z)."""
        z = self._sample_z(n, seed)
        return {"audio": self._audio(z), "z": z}

    def _generate_label(self, n, seed, label):
        """``n`` clips of class ``label`` from the z of ``seed`` (the same z for every label)."""
        z = self._sample_z(n, seed)
        labels = tf.fill([n], label)
        self._check_labels(labels)
        return {"audio": self._audio([z, labels]), "z": z}

    def _check_labels(self, labels):
        tf.debugging.assert_non_negative(labels, message="label must be >= 0")
        tf.debugging.assert_less(labels, self._num_classes,
                                 message=f"label must be < the {self._num_classes} classes")

    def signatures(self):
        return {SERVING_SIGNATURE: self.serve, GENERATE_SIGNATURE: self.generate}


def _constant_variable(value, dtype):
    return tf.Variable(value, dtype=dtype, trainable=False)


def export_metadata(config, step, precision="float32"):
    """The contents of ``assets/wavegan.json``: audio facts, step, version and the run config."""
    metadata = {name: getattr(config, name) for name in AUDIO_ATTRIBUTES}
    label = ["label"] if config.conditional else []
    metadata.update(step=int(step), wavegan_tf_version=__version__,
                    precision=precision,
                    signatures={SERVING_SIGNATURE: {"inputs": ["z"] + label,
                                                    "outputs": ["audio"]},
                                GENERATE_SIGNATURE: {"inputs": ["n", "seed"] + label,
                                                     "outputs": ["audio", "z"]}},
                    config=config.to_dict())
    if config.conditional:
        metadata["class_names"] = list(config.class_names)
    if config.model == "specgan":
        metadata["spectrogram_moments"] = MOMENTS_FILENAME
    return metadata


def write_export(generator, config, step, directory, precision="float32"):
    """Writes the SavedModel and ``generator.keras`` of ``generator`` (a model from z to audio,
    :meth:`wavegan_tf.training.config.GANConfig.build_audio_generator`) into ``directory``."""
    with tempfile.TemporaryDirectory() as scratch:
        metadata_path = os.path.join(scratch, METADATA_FILENAME)
        with open(metadata_path, "w", encoding="utf-8") as f:
            json.dump(export_metadata(config, step, precision), f, indent=2, sort_keys=True)
            f.write("\n")
        moments_path = None
        if config.model == "specgan":
            moments_path = audio_generator_moments(generator).save(
                os.path.join(scratch, MOMENTS_FILENAME))
        module = GeneratorExport(generator, config, step, metadata_path, precision,
                                 moments_path)
        tf.saved_model.save(module, directory, signatures=module.signatures())
    keras.saving.save_model(generator, os.path.join(directory, KERAS_FILENAME))


def export_generator(train_dir, export_dir=None, precision="float32"):
    """Exports G from the newest checkpoint of ``train_dir``; returns the export folder.

    ``export_dir`` defaults to ``train_dir/export``. ``precision`` is one of :data:`PRECISIONS`:
    "bfloat16" gives an export whose audio differs slightly from the float32 one, faster where
    bfloat16 is native and slower where it is emulated (a warning is logged then). The
    folder is replaced atomically: it is written under a temporary name beside the target and
    then renamed into place, so a failure leaves any previous export intact. Raises
    FileNotFoundError when ``train_dir`` has no config or no checkpoint.
    """
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {sorted(PRECISIONS)}, "
                         f"got precision={precision!r}")
    if precision == "bfloat16":
        warn_if_emulated("A bfloat16 export")
    with global_dtype_policy(PRECISIONS[precision]):
        config, generator, step = load_generator(train_dir)
    export_dir = export_dir or default_export_dir(train_dir)
    with atomic_output_dir(export_dir) as tmp:
        write_export(generator, config, step, tmp, precision)
    return export_dir


def read_metadata(export_dir):
    """The parsed ``assets/wavegan.json`` of an export folder."""
    with open(os.path.join(export_dir, "assets", METADATA_FILENAME), encoding="utf-8") as f:
        return json.load(f)


def load_keras_generator(path):
    """``(config, generator, step)`` of a training directory, an export folder or a pretrained
    model (``pretrained:NAME``, :mod:`wavegan_tf.serving.pretrained`).

    A training directory (it has ``config.json``) gives G from its newest usable checkpoint; an
    export gives ``generator.keras`` (loaded with safe mode on) with the config and step of its
    ``assets/wavegan.json``. This is G as Keras layers and weights, for writers of other formats
    (:mod:`wavegan_tf.serving.web_export`, :mod:`wavegan_tf.serving.tflite_export`). Raises FileNotFoundError for
    a missing path and ValueError for a folder that is neither, or an export without
    ``generator.keras``.
    """
    if pretrained.is_pretrained(path):
        return pretrained.load(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"model path {path!r} does not exist")
    if os.path.isfile(os.path.join(path, CONFIG_FILENAME)):
        return load_generator(path)
    keras_path = os.path.join(path, KERAS_FILENAME)
    if not os.path.isfile(os.path.join(path, "assets", METADATA_FILENAME)):
        raise ValueError(
            f"model path {path!r} is neither a training directory (no {CONFIG_FILENAME}) nor a "
            f"WaveGAN export (no assets/{METADATA_FILENAME})")
    if not os.path.isfile(keras_path):
        raise ValueError(f"export {path!r} has no {KERAS_FILENAME}: export it again from its "
                         "training directory")
    metadata = read_metadata(path)
    config = GANConfig.from_dict(metadata["config"])
    generator = keras.saving.load_model(keras_path, safe_mode=True)
    return config, generator, int(metadata["step"])
