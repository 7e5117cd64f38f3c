"""A trained generator as a LiteRT (TensorFlow Lite) flatbuffer, for phones and embedded boards.

:func:`export_tflite` converts G of a training directory or an export into ``PATH.tflite`` with
one signature, ``serving_default``: ``z`` float32 ``[batch, latent_dim]`` (and ``label``
int32 ``[batch]`` for a conditional model) -> ``output_0`` float32 ``[batch, slice_len,
num_channels]``, G's tanh output (a post-processing filter may leave [-1, 1]: clip it, as
``generate.py`` does). ``batch`` is fixed in the file (1 by default): with every shape fixed,
LiteRT runs the transposed convolutions with its XNNPACK kernels, int8 weights included; with a
free batch size it fell back to a reference kernel that made int8 25x slower (d=16 on 2 cores:
7.8 s against 0.32 s for 16 clips). A larger ``batch`` reads G's weights once for ``batch``
clips, which is faster per clip where many clips are made at once (see the docs' performance
page); one clip then costs a whole batch.

``weights`` chooses how the weights are stored:

* ``float32``: as trained; the audio equals the SavedModel's up to float rounding;
* ``float16``: half the size; weights are widened to float32 when the model is loaded;
* ``int8``: a quarter of the size (dynamic-range quantization: int8 weights with one scale
  per output channel, float32 activations); the audio differs audibly less than the size.

``PATH.tflite.json`` beside it holds what the flatbuffer does not: the audio facts, the step,
``class_names``, the weight type and the run's config (the export's ``wavegan.json`` plus
``weights``). :func:`load_tflite` reads both and runs the model with the ``ai-edge-litert``
interpreter, the standalone LiteRT runtime (``tf.lite.Interpreter`` is deprecated).
Both files are written under temporary names and renamed into place.
"""

import contextlib
import io
import json
import os

import keras
import numpy as np
import tensorflow as tf

from wavegan_tf.files.atomic_files import atomic_output_file
from wavegan_tf.files.json_files import read_json
from wavegan_tf.serving.export import export_metadata, load_keras_generator

TFLITE_SUFFIX = ".tflite"
METADATA_SUFFIX = ".json"
WEIGHT_TYPES = ("float32", "float16", "int8")
OUTPUT_NAME = "output_0"
SIGNATURE = "serving_default"


def metadata_path(tflite_path):
    """``PATH.tflite.json``: the facts of the model in ``PATH.tflite``."""
    return tflite_path + METADATA_SUFFIX


def fixed_batch_model(generator, batch=1):
    """G with its batch size fixed: the same layers and weights, inputs ``[batch, ...]``."""
    inputs = [keras.Input(tensor.shape[1:], batch_size=batch, dtype=tensor.dtype,
                          name=tensor.name) for tensor in generator.inputs]
    return keras.Model(inputs, generator(inputs if len(inputs) > 1 else inputs[0]))


def convert_generator(generator, weights="float32", batch=1):
    """G as TFLite flatbuffer bytes with ``weights`` stored as one of :data:`WEIGHT_TYPES`,
    taking ``batch`` clips per call (see the module doc)."""
    if weights not in WEIGHT_TYPES:
        raise ValueError(f"--tflite_weights must be one of {list(WEIGHT_TYPES)}, got {weights!r}")
    _check_batch(batch)
    converter = tf.lite.TFLiteConverter.from_keras_model(fixed_batch_model(generator, batch))
    if weights != "float32":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if weights == "float16":
        converter.target_spec.supported_types = [tf.float16]
    # The converter prints the temporary SavedModel it goes through; that is not our output.
    with contextlib.redirect_stdout(io.StringIO()):
        return converter.convert()


def export_tflite(model, path, *, weights="float32", batch=1, overwrite=False):
    """Writes G of ``model`` (a training directory or an export) to ``path`` and its facts to
    ``path.json``; returns ``path``. ``batch`` clips per call of the interpreter.

    ``path`` must end in ``.tflite``. Existing files are replaced only with ``overwrite``.
    Raises ValueError for a bad ``path``, ``weights``, ``batch`` or model, FileExistsError for
    existing files, OSError naming the folder when it cannot be written; nothing is left then.
    """
    if not path.endswith(TFLITE_SUFFIX):
        raise ValueError(f"--tflite must name a {TFLITE_SUFFIX} file, got {path!r}")
    if weights not in WEIGHT_TYPES:
        raise ValueError(f"--tflite_weights must be one of {list(WEIGHT_TYPES)}, got {weights!r}")
    _check_batch(batch)
    if not overwrite:
        for existing in (path, metadata_path(path)):
            if os.path.lexists(existing):
                raise FileExistsError(f"{existing!r} already exists; pass --overwrite to "
                                      "replace it")
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise OSError(f"cannot write to output directory {directory!r}: it is not an existing "
                      "folder")
    config, generator, step = load_keras_generator(model)
    flatbuffer = convert_generator(generator, weights, batch)
    metadata = export_metadata(config, step)
    metadata.update(weights=weights, batch=batch, signatures={SIGNATURE: {
        "inputs": ["z", "label"] if config.conditional else ["z"], "outputs": [OUTPUT_NAME]}})
    try:
        with atomic_output_file(metadata_path(path)) as tmp_json, \
                atomic_output_file(path, suffix=TFLITE_SUFFIX) as tmp_model:
            with open(tmp_json, "w", encoding="utf-8") as f:
                json.dump(metadata, f, indent=2, sort_keys=True)
                f.write("\n")
            with open(tmp_model, "wb") as f:
                f.write(flatbuffer)
    except OSError as err:
        raise OSError(f"cannot write {path!r}: {err.strerror or err}") from err
    return path


def load_tflite(path):
    """``(run, metadata)`` of a ``.tflite`` written by :func:`export_tflite`, run on every CPU
    core.

    ``run(z)`` or ``run(z, labels)`` returns audio ``[n, slice_len, num_channels]`` float32,
    the file's batch of clips per call of the interpreter (a last, partial batch is filled up
    with zeros, whose clips are dropped).
    Raises FileNotFoundError when ``path.json`` is missing, ValueError when either file cannot
    be read as what :func:`export_tflite` writes.
    """
    info_path = metadata_path(path)
    if not os.path.isfile(info_path):
        raise FileNotFoundError(f"{info_path!r} is missing: the facts of {path!r} (sample rate, "
                                "classes) are written beside it by generate.py --tflite")
    metadata = read_json(info_path)
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError as err:
        raise ValueError(f"running {path!r} needs the LiteRT interpreter: pip install "
                         "ai-edge-litert") from err
    try:
        runner = Interpreter(model_path=path, num_threads=os.cpu_count()).get_signature_runner(
            SIGNATURE)
    except (ValueError, RuntimeError) as err:
        raise ValueError(f"{path!r} cannot be loaded as a LiteRT model with a {SIGNATURE!r} "
                         f"signature: {err}") from err

    batch = int(runner.get_input_details()["z"]["shape"][0])

    def run(z, labels=None):
        z = np.asarray(z, np.float32)
        clips = []
        for i in range(0, len(z), batch):
            inputs = {"z": _filled(z[i:i + batch], batch)}
            if labels is not None:
                inputs["label"] = _filled(np.asarray(labels, np.int32)[i:i + batch], batch)
            clips.append(runner(**inputs)[OUTPUT_NAME][:len(z) - i])
        return np.concatenate(clips, axis=0)
    return run, metadata


def _filled(rows, batch):
    """``rows`` followed by zero rows up to ``batch`` of them."""
    missing = batch - len(rows)
    return rows if not missing else np.concatenate(
        [rows, np.zeros((missing,) + rows.shape[1:], rows.dtype)])


def _check_batch(batch):
    if isinstance(batch, bool) or not isinstance(batch, int) or batch < 1:
        raise ValueError(f"--tflite_batch must be a whole number >= 1, got {batch!r}")
