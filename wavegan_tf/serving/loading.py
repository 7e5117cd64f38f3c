"""Loading a trained generator in any of its formats, as one GenerationModel from z to audio.

A model is given as a training directory (G is restored from its newest checkpoint), as its
``export/`` folder or any SavedModel written by :func:`wavegan_tf.serving.export.export_generator`,
or as a ``.tflite`` file of :func:`wavegan_tf.serving.tflite_export.export_tflite`. Each gives
the same audio for the same z.
"""

import os

import numpy as np
import tensorflow as tf

from wavegan_tf.files.atomic_files import read_replaceable_dir, replacement_under_way
from wavegan_tf.nets.latent import check_z
from wavegan_tf.serving import pretrained, tflite_export
from wavegan_tf.serving.export import AUDIO_ATTRIBUTES, SERVING_SIGNATURE
from wavegan_tf.training.checkpoints import load_generator
from wavegan_tf.training.config import CONFIG_FILENAME

DEFAULT_BATCH_SIZE = 64
SAVED_MODEL_FILENAME = "saved_model.pb"


def class_index(label, class_names, source):
    """The index in ``class_names`` (of the model at ``source``) of ``label``: a class name, or
    an index (int or digits); a name wins over an index. ValueError listing the classes."""
    if str(label) in class_names:
        return class_names.index(str(label))
    text = str(label).strip()
    if text.isdigit() and int(text) < len(class_names):
        return int(text)
    raise ValueError(f"unknown label {label!r} for model {source!r}; its classes are "
                     f"{class_names} (a name, or an index 0-{len(class_names) - 1})")


def z_file_labels(path, labels, class_names, source):
    """The class indices ``[n]`` int32 of the ``labels`` that the z file ``path`` names (None
    when it names none) for the model at ``source`` with ``class_names`` (None: unconditional).
    ValueError naming the file for labels an unconditional model cannot take or unknown ones."""
    if labels is None:
        return None
    if class_names is None:
        raise ValueError(f"z file {path!r} names labels, but model {source!r} is unconditional "
                         "(trained without --conditional)")
    try:
        return np.array([class_index(label, class_names, source) for label in labels], np.int32)
    except ValueError as err:
        raise ValueError(f"z file {path!r}: {err}") from None


class GenerationModel:
    """A generator that maps z ``[n, latent_dim]`` to audio, plus what is needed to write it.

    Attributes:
        sample_rate, latent_dim, slice_len, num_channels: the model's audio facts.
        source: the path it was loaded from.
        step: the generator step it was trained for.
        class_names: the classes of a conditional model in label order, else None.
    """

    def __init__(self, audio_fn, *, sample_rate, latent_dim, slice_len, num_channels, source,
                 step, class_names=None, call_batch=1):
        self._audio_fn = audio_fn
        self._call_batch = int(call_batch)
        self.sample_rate = int(sample_rate)
        self.latent_dim = int(latent_dim)
        self.slice_len = int(slice_len)
        self.num_channels = int(num_channels)
        self.source = source
        self.step = int(step)
        self.class_names = None if class_names is None else list(class_names)

    @property
    def conditional(self):
        return self.class_names is not None

    def label_index(self, label):
        """The class index of ``label``: a class name, or an index (int or digits).

        A name wins over an index, so classes named "0".."9" mean what they say. Raises
        ValueError listing the known classes for anything else, and for an unconditional model.
        """
        if not self.conditional:
            raise ValueError(f"model {self.source!r} is unconditional: it takes no label")
        return class_index(label, self.class_names, self.source)

    def generate(self, z, batch_size=DEFAULT_BATCH_SIZE, labels=None):
        """Audio ``[n, slice_len, num_channels]`` float32 in [-1, 1] for z ``[n, latent_dim]``.

        A conditional model needs ``labels``: class indices ``[n]``, or one index for all
        clips; an unconditional one takes none. z is fed through G ``batch_size`` rows at a
        time to bound memory (rounded up to a whole number of the clips a LiteRT file takes
        per call, so that only the last call is filled up).
        """
        z = check_z(z, self.latent_dim)
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got batch_size={batch_size!r}")
        batch_size = -(-batch_size // self._call_batch) * self._call_batch
        labels = self._check_labels(labels, len(z))
        batches = []
        for i in range(0, len(z), batch_size):
            inputs = [tf.constant(z[i:i + batch_size])]
            if labels is not None:
                inputs.append(tf.constant(labels[i:i + batch_size]))
            batches.append(np.asarray(self._audio_fn(*inputs), np.float32))
        return np.clip(np.concatenate(batches, axis=0), -1.0, 1.0)

    def _check_labels(self, labels, n):
        if not self.conditional:
            if labels is not None:
                raise ValueError(f"model {self.source!r} is unconditional: it takes no labels")
            return None
        if labels is None:
            raise ValueError(f"model {self.source!r} is conditional: give a label per clip "
                             f"(classes {self.class_names})")
        labels = np.broadcast_to(np.asarray(labels), (n,)).astype(np.int32)
        if labels.min() < 0 or labels.max() >= len(self.class_names):
            raise ValueError(f"labels must be class indices in [0, {len(self.class_names)}) "
                             f"for the classes {self.class_names}, got {sorted(set(labels))}")
        return labels


def load_model_for_generation(path):
    """Loads a training directory, its ``export/``, an exported SavedModel or a ``.tflite``.

    A training directory (it has ``config.json``) is restored from its newest checkpoint that
    reads back completely (damaged newer ones are skipped with a warning naming them); a
    folder with ``saved_model.pb`` is loaded with ``tf.saved_model.load`` and used through its
    ``serving_default`` signature; a ``.tflite`` file written by
    :func:`wavegan_tf.serving.tflite_export.export_tflite` runs in the LiteRT interpreter. Raises
    FileNotFoundError for a missing path, a training directory without a checkpoint or a
    ``.tflite`` without its ``.json``, and ValueError for a SavedModel that is not a WaveGAN
    export or is damaged, a training directory whose checkpoints are all damaged
    (wavegan_tf.training.checkpoints.CorruptCheckpointError), or a path that is none of these.
    """
    if pretrained.is_pretrained(path):
        return _from_keras(path, *pretrained.load(path))
    if os.path.isfile(os.path.join(path, SAVED_MODEL_FILENAME)) or replacement_under_way(path):
        # An export a trainer may be replacing: read again if the replacement got in the way.
        return read_replaceable_dir(path, _load_path)
    return _load_path(path)


def _load_path(path):
    if not os.path.exists(path):
        raise FileNotFoundError(f"model path {path!r} does not exist")
    if os.path.isfile(path) and path.endswith(tflite_export.TFLITE_SUFFIX):
        return _from_tflite(path)
    if os.path.isfile(os.path.join(path, CONFIG_FILENAME)):
        return _from_train_dir(path)
    if os.path.isfile(os.path.join(path, SAVED_MODEL_FILENAME)):
        return _from_saved_model(path)
    raise ValueError(
        f"model path {path!r} is neither a training directory (no {CONFIG_FILENAME}) nor an "
        f"exported SavedModel (no {SAVED_MODEL_FILENAME}) nor a {tflite_export.TFLITE_SUFFIX} "
        "file")


def _from_train_dir(train_dir):
    return _from_keras(train_dir, *load_generator(train_dir))


def _from_keras(source, config, generator, step):
    """A GenerationModel of a Keras model from z to audio and its run's config."""
    def audio_fn(*inputs):
        return generator(list(inputs) if len(inputs) > 1 else inputs[0], training=False)

    return GenerationModel(
        audio_fn, sample_rate=config.sample_rate, latent_dim=config.latent_dim,
        slice_len=config.slice_len, num_channels=config.num_channels, source=source,
        step=step, class_names=config.class_names if config.conditional else None)


def _from_tflite(path):
    run, metadata = tflite_export.load_tflite(path)
    return GenerationModel(
        run, sample_rate=metadata["sample_rate"], latent_dim=metadata["latent_dim"],
        slice_len=metadata["slice_len"], num_channels=metadata["num_channels"], source=path,
        step=metadata["step"], class_names=metadata.get("class_names"),
        call_batch=metadata.get("batch", 1))


def _from_saved_model(path):
    loaded = _load_saved_model(path)
    signature = _serving_signature(loaded, path)
    missing = [name for name in AUDIO_ATTRIBUTES + ("step",) if not hasattr(loaded, name)]
    if missing:
        raise ValueError(f"SavedModel {path!r} is not a WaveGAN export: it lacks the attributes "
                         f"{missing}")
    facts = {name: int(getattr(loaded, name).numpy()) for name in AUDIO_ATTRIBUTES}
    inputs = signature.structured_input_signature[1]
    z_spec = inputs["z"]
    if z_spec.shape[1] != facts["latent_dim"]:
        raise ValueError(f"SavedModel {path!r}: serving_default takes z of shape {z_spec.shape} "
                         f"but the model says latent_dim={facts['latent_dim']}")
    class_names = None
    if "label" in inputs:
        if not hasattr(loaded, "class_names"):
            raise ValueError(f"SavedModel {path!r} takes a label but lacks the attribute "
                             "class_names: not a conditional WaveGAN export")
        class_names = [name.decode() for name in loaded.class_names.numpy()]

    def audio_fn(z, label=None):
        return signature(z=z)["audio"] if label is None else signature(z=z, label=label)["audio"]

    return GenerationModel(audio_fn, source=path, step=int(loaded.step.numpy()),
                           class_names=class_names, **facts)


def _load_saved_model(path):
    """``tf.saved_model.load(path)``; a ValueError naming ``path`` when its files are damaged.

    A truncated or damaged SavedModel fails in several ways (a protobuf parse error, an
    IndexError from a short variables file, a TF error from a bad index), so every failure to
    load counts as damage.
    """
    try:
        return tf.saved_model.load(path)
    except Exception as err:  # noqa: BLE001 -- see the docstring
        reason = (str(err).strip() or type(err).__name__).splitlines()[0]
        raise ValueError(f"export {path!r} cannot be loaded: it is corrupt or incomplete "
                         f"({reason}); export it again from its training directory") from err


def _serving_signature(loaded, path):
    """The ``serving_default`` signature, checked to map ``z`` [None, d] float32 (and, for a
    conditional model, ``label`` [None] int32) to ``audio``."""
    expected = ("serving_default(z: float32 [None, latent_dim]) -> "
                "{'audio': float32 [None, slice_len, num_channels]}, or for a conditional model "
                "serving_default(z: float32 [None, latent_dim], label: int32 [None])")
    signatures = sorted(loaded.signatures.keys())
    if SERVING_SIGNATURE not in signatures:
        raise ValueError(f"SavedModel {path!r} has no {SERVING_SIGNATURE!r} signature (it has "
                         f"{signatures}); expected {expected}")
    signature = loaded.signatures[SERVING_SIGNATURE]
    args, kwargs = signature.structured_input_signature
    outputs = signature.structured_outputs
    z_spec = kwargs.get("z")
    label_spec = kwargs.get("label")
    label_ok = label_spec is None or (label_spec.dtype == tf.int32 and label_spec.shape.rank == 1)
    if (args or set(kwargs) not in ({"z"}, {"z", "label"}) or not label_ok
            or z_spec.dtype != tf.float32 or z_spec.shape.rank != 2
            or not isinstance(outputs, dict) or "audio" not in outputs
            or outputs["audio"].shape.rank != 3):
        inputs = {name: f"{spec.dtype.name} {spec.shape}" for name, spec in kwargs.items()}
        output_names = sorted(outputs) if isinstance(outputs, dict) else outputs
        raise ValueError(f"SavedModel {path!r}: its {SERVING_SIGNATURE!r} signature takes "
                         f"{inputs} and returns {output_names}; expected {expected}")
    return signature


def load_pretrained(name):
    """A pretrained model that ships with the package (``"digits"``, ``"drums"``, or
    ``"pretrained:NAME"``) as a :class:`GenerationModel`; ValueError listing the known names
    for an unknown one. No training and no network."""
    return load_model_for_generation(name if pretrained.is_pretrained(name)
                                     else pretrained.PREFIX + name)
