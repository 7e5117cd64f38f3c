"""Turning a trained generator into WAV files: loading it, choosing z, writing the clips.

A model is given as a training directory (G is restored from its newest checkpoint), as its
``export/`` folder, or as any SavedModel written by :func:`wavegan_tf.serving.export.export_generator`.
z is drawn on the host with ``numpy.random.default_rng(seed).uniform(-1, 1)``, so a seed names
the same z, and therefore the same audio, whichever form of the model is loaded.

A class-conditional model also takes a label per clip: ``label`` (a class name or index) writes
every clip of that class, ``per_class`` writes that many clips of every class into
``OUT/<class>/``, each class from the same z (clip i of every class is z row i).

With ``plot`` the first clips written are also drawn as a PNG sheet of waveforms and log-mel
spectrograms (:func:`wavegan_tf.audio.plots.plot_sheet`), beside as many real clips from
``plot_data_dir`` when it is given.
"""

import os
import tempfile

import numpy as np
import tensorflow as tf

from wavegan_tf.audio import plots, wav_io
from wavegan_tf.serving import tflite_export
from wavegan_tf.files.atomic_files import atomic_output_file
from wavegan_tf.training.checkpoints import load_generator
from wavegan_tf.training.config import CONFIG_FILENAME
from wavegan_tf.serving.export import AUDIO_ATTRIBUTES, SERVING_SIGNATURE

DEFAULT_NUM_CLIPS = 16
DEFAULT_BATCH_SIZE = 64
CLIP_FILENAME = "wavegan_{index:0{width}d}.wav"
CONCAT_FILENAME = "wavegan_all.wav"
# Silence after each clip in the concatenated file, as in the original code's previews.
CONCAT_GAP_SECONDS = 0.5
SAVED_MODEL_FILENAME = "saved_model.pb"


class GenerationModel:
    """A generator that maps z ``[n, latent_dim]`` to audio, plus what is needed to write it.

    Attributes:
        sample_rate, latent_dim, slice_len, num_channels: the model's audio facts.
        source: the path it was loaded from.
        step: the generator step it was trained for.
        class_names: the classes of a conditional model in label order, else None.
    """

    def __init__(self, audio_fn, *, sample_rate, latent_dim, slice_len, num_channels, source,
                 step, class_names=None):
        self._audio_fn = audio_fn
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
        if str(label) in self.class_names:
            return self.class_names.index(str(label))
        text = str(label).strip()
        if text.isdigit() and int(text) < len(self.class_names):
            return int(text)
        raise ValueError(f"unknown label {label!r} for model {self.source!r}; its classes are "
                         f"{self.class_names} (a name, or an index 0-"
                         f"{len(self.class_names) - 1})")

    def generate(self, z, batch_size=DEFAULT_BATCH_SIZE, labels=None):
        """Audio ``[n, slice_len, num_channels]`` float32 in [-1, 1] for z ``[n, latent_dim]``.

        A conditional model needs ``labels``: class indices ``[n]``, or one index for all
        clips; an unconditional one takes none. z is fed through G ``batch_size`` rows at a
        time to bound memory.
        """
        z = check_z(z, self.latent_dim)
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got batch_size={batch_size!r}")
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
    config, generator, step = load_generator(train_dir)

    def audio_fn(*inputs):
        return generator(list(inputs) if len(inputs) > 1 else inputs[0], training=False)

    return GenerationModel(
        audio_fn, sample_rate=config.sample_rate, latent_dim=config.latent_dim,
        slice_len=config.slice_len, num_channels=config.num_channels, source=train_dir,
        step=step, class_names=config.class_names if config.conditional else None)


def _from_tflite(path):
    run, metadata = tflite_export.load_tflite(path)
    return GenerationModel(
        run, sample_rate=metadata["sample_rate"], latent_dim=metadata["latent_dim"],
        slice_len=metadata["slice_len"], num_channels=metadata["num_channels"], source=path,
        step=metadata["step"], class_names=metadata.get("class_names"))


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


def sample_z(n, latent_dim, seed):
    """z ~ U(-1, 1) of shape ``[n, latent_dim]`` float32 from ``default_rng(seed)``.

    Row i does not depend on ``n``: the first clips of a larger draw equal a smaller draw.
    """
    return np.random.default_rng(seed).uniform(-1.0, 1.0, (n, latent_dim)).astype(np.float32)


def interpolate_z(n, latent_dim, seed):
    """``n`` evenly spaced z on the line from the z of ``seed`` to the z of ``seed + 1``.

    The endpoints are exactly ``sample_z(1, latent_dim, seed)[0]`` and
    ``sample_z(1, latent_dim, seed + 1)[0]``, the first clips of those seeds.
    """
    if n < 2:
        raise ValueError(f"interpolation needs at least 2 clips, got {n}")
    start = np.random.default_rng(seed).uniform(-1.0, 1.0, latent_dim)
    end = np.random.default_rng(seed + 1).uniform(-1.0, 1.0, latent_dim)
    t = np.linspace(0.0, 1.0, n)[:, None]
    return ((1.0 - t) * start + t * end).astype(np.float32)


def check_z(z, latent_dim, source="z"):
    """``z`` as float32 after checking it is a finite ``[n >= 1, latent_dim]`` array."""
    z = np.asarray(z)
    if z.ndim != 2 or z.shape[0] < 1 or z.shape[1] != latent_dim:
        raise ValueError(f"{source} must have shape [n >= 1, latent_dim={latent_dim}], "
                         f"got {z.shape}")
    if not np.issubdtype(z.dtype, np.number) or not np.all(np.isfinite(z)):
        raise ValueError(f"{source} must hold finite numbers (dtype {z.dtype})")
    return z.astype(np.float32)


def load_z(path):
    """Reads a ``.npy`` of z vectors ``[n, latent_dim]`` (checked against a model later)."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"z file {path!r} does not exist")
    try:
        z = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as err:
        raise ValueError(f"cannot read z file {path!r} as a .npy array: {err}") from err
    if z.ndim != 2 or z.shape[0] < 1:
        raise ValueError(f"z file {path!r} must hold an array [n >= 1, latent_dim], "
                         f"got shape {z.shape}")
    return z


def save_z(path, z):
    """Writes z to a ``.npy`` file atomically."""
    with atomic_output_file(path, suffix=".npy") as tmp:
        np.save(tmp, np.asarray(z, np.float32))
    return path


def clip_paths(out_dir, n):
    """``out_dir/wavegan_0000.wav`` ... for ``n`` clips (wider numbers past 10000 clips)."""
    width = max(4, len(str(n - 1)))
    return [os.path.join(out_dir, CLIP_FILENAME.format(index=i, width=width)) for i in range(n)]


def concatenate_clips(audio, sample_rate):
    """All clips ``[n, time, channels]`` in one ``[n * (time + gap), channels]`` track.

    Each clip is followed by ``CONCAT_GAP_SECONDS`` of silence, as in the original previews.
    """
    gap = int(round(CONCAT_GAP_SECONDS * sample_rate))
    padded = np.pad(audio, ((0, 0), (0, gap), (0, 0)))
    return padded.reshape(-1, audio.shape[-1])


def ensure_writable_dir(directory):
    """Creates ``directory`` if needed and checks a file can be created in it."""
    try:
        os.makedirs(directory, exist_ok=True)
        with tempfile.TemporaryFile(dir=directory):
            pass
    except OSError as err:
        raise OSError(f"cannot write to output directory {directory!r}: "
                      f"{err.strerror or err}") from err


def check_not_existing(paths):
    """Raises FileExistsError naming the first of ``paths`` that already exists."""
    for path in paths:
        if os.path.lexists(path):
            raise FileExistsError(f"{path!r} already exists; pass --overwrite to replace "
                                  "existing files")


def choose_z(latent_dim, *, n=None, seed=0, interpolate=0):
    """Seeded z: ``interpolate`` clips between two seeds' z if set, else ``n`` random rows."""
    if interpolate:
        return interpolate_z(interpolate, latent_dim, seed)
    return sample_z(DEFAULT_NUM_CLIPS if n is None else n, latent_dim, seed)


def check_options(*, n, seed, batch_size, z_in, interpolate, label=None, per_class=None,
                  plot=None, plot_data_dir=None):
    """Rejects contradictory or out-of-range generation options with a clear message."""
    if plot_data_dir is not None and plot is None:
        raise ValueError("--plot_data_dir is used only with --plot (the sheet it adds real "
                         "clips to)")
    if plot is not None and not plot.lower().endswith(".png"):
        raise ValueError(f"--plot must name a .png file, got {plot!r}")
    if plot_data_dir is not None and not os.path.isdir(plot_data_dir):
        raise FileNotFoundError(f"--plot_data_dir {plot_data_dir!r} is not a folder")
    if z_in is not None and interpolate:
        raise ValueError("--z_in and --interpolate are exclusive: give one source of z")
    if n is not None and (z_in is not None or interpolate):
        raise ValueError("--n is not used with --z_in or --interpolate (they fix the count)")
    if label is not None and per_class is not None:
        raise ValueError("--label and --per_class are exclusive: one class, or every class")
    if per_class is not None and n is not None:
        raise ValueError("--n is not used with --per_class (it is the count per class)")
    if per_class is not None and (z_in is not None or interpolate):
        raise ValueError("--per_class is not used with --z_in or --interpolate (they fix the "
                         "count); give --label to write them for one class")
    if per_class is not None and per_class < 1:
        raise ValueError(f"--per_class must be >= 1, got {per_class}")
    if n is not None and n < 1:
        raise ValueError(f"--n must be >= 1, got {n}")
    if interpolate != 0 and interpolate < 2:
        raise ValueError(f"--interpolate needs at least 2 clips (0 turns it off), "
                         f"got {interpolate}")
    if seed < 0:
        raise ValueError(f"--seed must be >= 0, got {seed}")
    if batch_size < 1:
        raise ValueError(f"--batch_size must be >= 1, got {batch_size}")


# Flags of generate.py that shape WAV output only; --web writes a page instead.
WAV_ONLY_FLAGS = ("n", "out_dir", "batch_size", "z_in", "z_out", "interpolate", "concat",
                  "label", "per_class", "plot", "plot_data_dir")


def check_no_wav_options(export_flag, given):
    """ValueError when flags that only shape WAV output (``given``, names without dashes) are
    combined with ``export_flag``, which writes the model in another form."""
    if given:
        names = ", ".join(f"--{name}" for name in given)
        raise ValueError(f"{names} shape WAV output and are not used with {export_flag}")


def run_generation(model, out_dir, *, n=None, seed=0, batch_size=DEFAULT_BATCH_SIZE, z_in=None,
                   z_out=None, interpolate=0, concat=False, overwrite=False, label=None,
                   per_class=None, plot=None, plot_data_dir=None):
    """Generates clips with the model at path ``model`` and writes them as 16-bit WAVs.

    The arguments are those of ``generate.py``. z comes from the ``.npy`` file ``z_in``
    (``[n, latent_dim]``), from ``interpolate`` clips between the z of ``seed`` and
    ``seed + 1``, or else from ``n`` (default 16) random rows for ``seed``. Writes
    ``out_dir/wavegan_0000.wav`` ..., with ``concat`` also ``out_dir/wavegan_all.wav``, and
    with ``z_out`` (a ``.npy`` path) the z used. A conditional model needs ``label`` (a class
    name or index: every clip is of that class) or ``per_class`` (that many clips of every
    class, the same z for each, into ``out_dir/<class>/``, each folder laid out as above).
    With ``plot`` (a ``.png`` path) the first clips written are drawn there as a sheet of
    waveforms and log-mel spectrograms, with ``plot_data_dir`` beside as many real clips cut
    from that folder of audio (seeded by ``seed``).
    Nothing is overwritten unless ``overwrite``; every file is written atomically. Returns the
    paths written.
    """
    check_options(n=n, seed=seed, batch_size=batch_size, z_in=z_in, interpolate=interpolate,
                  label=label, per_class=per_class, plot=plot, plot_data_dir=plot_data_dir)
    generator = load_model_for_generation(model)
    _check_conditioning_options(generator, label, per_class)
    if z_in is not None:
        z = check_z(load_z(z_in), generator.latent_dim, source=f"z file {z_in!r}")
    else:
        z = choose_z(generator.latent_dim, n=per_class or n, seed=seed, interpolate=interpolate)
    if per_class is None:
        labels = None if label is None else generator.label_index(label)
        jobs = [(out_dir, labels)]
    else:
        jobs = [(os.path.join(out_dir, name), index)
                for index, name in enumerate(generator.class_names)]
    outputs = [prepare_outputs(folder, len(z), concat=concat, z_out=z_out, overwrite=overwrite)
               for folder, _ in jobs]
    if plot is not None:
        prepare_plot(plot, overwrite=overwrite)
    written, plotted = [], []
    for (_, labels), (wav_paths, concat_path) in zip(jobs, outputs):
        audio = generator.generate(z, batch_size=batch_size, labels=labels)
        plotted.append(audio)
        for path, clip in zip(wav_paths, audio):
            wav_io.write_wav(path, clip, generator.sample_rate)
        written += wav_paths
        if concat_path is not None:
            written.append(wav_io.write_wav(concat_path,
                                            concatenate_clips(audio, generator.sample_rate),
                                            generator.sample_rate))
    if z_out is not None:
        written.append(save_z(z_out, z))
    if plot is not None:
        written.append(_plot(plot, np.concatenate(plotted), generator, plot_data_dir, seed))
    return written


def prepare_plot(plot, *, overwrite):
    """Checks the folder of the ``plot`` file is writable and, unless ``overwrite``, that the
    file does not exist."""
    ensure_writable_dir(os.path.dirname(os.path.abspath(plot)))
    if not overwrite:
        check_not_existing([plot])


def _plot(path, audio, generator, data_dir, seed):
    """Draws the first clips of ``audio`` to ``path``, with real clips of ``data_dir``."""
    clips = audio[:plots.MAX_SHEET_CLIPS]
    real = None
    if data_dir is not None:
        from wavegan_tf.audio.data import audio_dataset

        real = next(iter(audio_dataset(
            data_dir, slice_len=generator.slice_len, sample_rate=generator.sample_rate,
            num_channels=generator.num_channels, batch_size=len(clips), seed=seed))).numpy()
    title = f"{os.path.basename(os.path.normpath(generator.source))}, step {generator.step}"
    return plots.plot_sheet(path, clips, generator.sample_rate, real=real, title=title)


def _check_conditioning_options(generator, label, per_class):
    """--label/--per_class only for a conditional model, which needs one of them."""
    if not generator.conditional:
        given = [name for name, value in (("--label", label), ("--per_class", per_class))
                 if value is not None]
        if given:
            raise ValueError(f"{' and '.join(given)} need a conditional model; "
                             f"{generator.source!r} is unconditional (trained without "
                             "--conditional)")
        return
    if label is None and per_class is None:
        raise ValueError(f"{generator.source!r} is a conditional model: give --label (one of "
                         f"{generator.class_names}, or an index) or --per_class N")
    if label is not None:
        generator.label_index(label)


def prepare_outputs(out_dir, count, *, concat, z_out, overwrite):
    """Checks the output folders are writable and, unless ``overwrite``, that no file exists.

    Returns the clip paths and the concatenated file's path (None without ``concat``).
    """
    ensure_writable_dir(out_dir)
    if z_out is not None:
        ensure_writable_dir(os.path.dirname(os.path.abspath(z_out)))
    wav_paths = clip_paths(out_dir, count)
    concat_path = os.path.join(out_dir, CONCAT_FILENAME) if concat else None
    if not overwrite:
        check_not_existing(wav_paths + [p for p in (concat_path, z_out) if p is not None])
    return wav_paths, concat_path
