"""Layout of a training directory, the checkpoint format inside it, and finding a good one.

A training directory holds ``config.json`` (the :class:`~wavegan_tf.training.config.GANConfig`) and
``checkpoints/`` (``tf.train.Checkpoint`` files managed by ``tf.train.CheckpointManager``). A
checkpoint stores G, D, both optimizers, the generator-step counter and the trainer's RNG state,
under the object names below, so that any part (for example G alone, for export) can be restored.
A run with generator weight averaging (``ema_decay``) also stores the averaged G as
:data:`AVERAGE_NAME`; :func:`load_generator` (export, generation, scoring) then takes that one.

Which checkpoint is used. A checkpoint ``ckpt-N`` is ``ckpt-N.index`` plus its data files. TF
writes the data, then the index (under a temporary name, renamed into place), then records the
checkpoint in the ``checkpoint`` state file, so a process killed while saving leaves at most a
``ckpt-N_temp/`` folder and never a half-written ``ckpt-N``. Files can still be damaged later
(a full disk, a crash of the machine, a bad copy), and the state file can be lost or lag
behind. So readers do not trust the state file: :func:`usable_checkpoint` takes the
checkpoints that have an index, newest step first, reads every tensor of each back (TF checks
each tensor's checksum) and returns the first that reads completely, logging a warning that
names each damaged one it skips. With none readable it raises :class:`CorruptCheckpointError`
naming them all. A resuming trainer also calls :func:`prepare_resume`, which moves damaged
checkpoints into ``checkpoints/corrupt/``, deletes the leftovers of interrupted saves and
rewrites the state file to match.
"""

import dataclasses
import glob
import os
import re
import shutil

import tensorflow as tf
from absl import logging

from wavegan_tf.files.atomic_files import atomic_output_file
from wavegan_tf.files.json_files import read_fields
from wavegan_tf.training.config import CONFIG_FILENAME, GANConfig
from wavegan_tf.audio.spectrogram import MOMENTS_FILENAME, SpectrogramMoments

CHECKPOINT_SUBDIR = "checkpoints"
CHECKPOINT_PREFIX = "ckpt"
STATE_FILENAME = "checkpoint"
CORRUPT_SUBDIR = "corrupt"
# Checkpoint object name of the averaged generator (runs with ema_decay > 0).
AVERAGE_NAME = "generator_ema"
_NUMBERED = re.compile(rf"^{CHECKPOINT_PREFIX}-(\d+)$")


class CorruptCheckpointError(ValueError):
    """Checkpoints cannot be read back completely (missing, truncated or damaged files).

    ``paths`` are the prefixes of the damaged checkpoints.
    """

    def __init__(self, message, paths=()):
        super().__init__(message)
        self.paths = tuple(paths)


class CheckpointSaveError(OSError):
    """A checkpoint could not be written (full disk, unwritable folder)."""


def checkpoint_dir(train_dir):
    return os.path.join(train_dir, CHECKPOINT_SUBDIR)


def make_checkpoint(gan, step, with_average=True):
    """A ``tf.train.Checkpoint`` of a compiled WaveGAN and an int64 step variable (and the
    averaged G when the WaveGAN has one; ``with_average=False`` leaves it out)."""
    objects = dict(generator=gan.generator, discriminator=gan.discriminator,
                   g_optimizer=gan.g_optimizer, d_optimizer=gan.d_optimizer, step=step,
                   seed_state=gan.seed_generator.state)
    if with_average and gan.ema_generator is not None:
        objects[AVERAGE_NAME] = gan.ema_generator
    return tf.train.Checkpoint(**objects)


def holds_average(prefix):
    """True when the checkpoint ``prefix`` stores an averaged generator."""
    names = tf.train.load_checkpoint(prefix).get_variable_to_shape_map()
    return any(name.startswith(AVERAGE_NAME + "/") for name in names)


def latest_checkpoint(train_dir):
    """Path prefix of the newest checkpoint recorded in the state file, or None.

    This is what the trainer last finished saving; :func:`usable_checkpoint` is the one to
    load from.
    """
    return tf.train.latest_checkpoint(checkpoint_dir(train_dir))


def checkpoint_number(prefix):
    """N of a prefix ``.../ckpt-N``, or None for another name."""
    match = _NUMBERED.match(os.path.basename(prefix))
    return int(match.group(1)) if match else None


def list_checkpoints(train_dir):
    """Prefixes of every ``ckpt-N`` with an index file in ``train_dir``, highest N first."""
    prefixes = [path[:-len(".index")] for path in
                glob.glob(os.path.join(glob.escape(checkpoint_dir(train_dir)), "*.index"))]
    numbered = [p for p in prefixes if checkpoint_number(p) is not None]
    return sorted(numbered, key=checkpoint_number, reverse=True)


def verify_checkpoint(prefix):
    """Reads every tensor of the checkpoint ``prefix`` back; CorruptCheckpointError if any fails.

    TF checks each tensor against the checksum stored in the index, so a truncated, missing or
    damaged data file, or a damaged index, is found here rather than halfway through a restore.
    The reader reports damage as several exception types (a truncated file is an IndexError),
    so every failure to read counts as damage.
    """
    try:
        reader = tf.train.load_checkpoint(prefix)
        for name in reader.get_variable_to_shape_map():
            reader.get_tensor(name)
    except Exception as err:  # noqa: BLE001 -- any failure to read means the files are bad
        raise CorruptCheckpointError(
            f"checkpoint {prefix!r} is corrupt or incomplete ({_first_line(err)})",
            paths=[prefix]) from err


def usable_checkpoint(train_dir):
    """``(prefix, damaged)``: the newest checkpoint that reads back completely, and the errors
    of the newer ones that did not (each also logged as a warning).

    ``prefix`` is None when ``train_dir`` has no checkpoint at all. Raises
    CorruptCheckpointError, naming every damaged checkpoint, when there are checkpoints but
    none can be read.
    """
    damaged = []
    for prefix in list_checkpoints(train_dir):
        try:
            verify_checkpoint(prefix)
        except CorruptCheckpointError as err:
            if not os.path.exists(prefix + ".index"):
                continue  # deleted meanwhile: a running trainer keeps only its newest ones
            logging.warning("%s; trying the previous checkpoint.", err)
            damaged.append(err)
            continue
        if damaged:
            logging.warning("Using %s, the newest checkpoint that reads back completely.",
                            prefix)
        return prefix, damaged
    if damaged:
        raise CorruptCheckpointError(
            f"no usable checkpoint in {checkpoint_dir(train_dir)!r}: "
            + "; ".join(str(err) for err in damaged),
            paths=[path for err in damaged for path in err.paths])
    return None, damaged


def prepare_resume(train_dir):
    """Makes ``train_dir/checkpoints`` safe to resume from; returns the prefix to restore.

    Deletes what interrupted saves left behind, moves damaged checkpoints newer than the
    usable one into ``checkpoints/corrupt/`` (with a warning naming where), and rewrites the
    state file so that it lists exactly the remaining checkpoints with the usable one as the
    latest. Must only run while this process owns the directory (wavegan_tf.files.locks.RunLock).
    Returns None for a directory without checkpoints; raises CorruptCheckpointError when
    every checkpoint is damaged (nothing is moved then).
    """
    directory = checkpoint_dir(train_dir)
    remove_save_leftovers(directory)
    prefix, damaged = usable_checkpoint(train_dir)
    for err in damaged:
        _quarantine(err.paths[0], directory)
    if prefix is not None and (damaged or latest_checkpoint(train_dir) != prefix):
        _write_state(directory, list_checkpoints(train_dir))
    return prefix


def remove_save_leftovers(directory):
    """Deletes the debris of saves that were interrupted: ``ckpt-N_temp/`` folders, temporary
    state files, and data files whose index was never written (or already deleted)."""
    debris = glob.glob(os.path.join(glob.escape(directory), f"{CHECKPOINT_PREFIX}-*_temp"))
    debris += glob.glob(os.path.join(glob.escape(directory), f"{STATE_FILENAME}.tmp*"))
    debris += [path for path in glob.glob(os.path.join(glob.escape(directory), "*.data-*"))
               if not os.path.exists(path.split(".data-")[0] + ".index")]
    for path in debris:
        if os.path.isdir(path):
            shutil.rmtree(path, ignore_errors=True)
        else:
            os.remove(path)
    if debris:
        logging.info("Removed %d leftover file(s) of interrupted checkpoint saves in %s.",
                     len(debris), directory)


def _quarantine(prefix, directory):
    """Moves the files of checkpoint ``prefix`` into ``directory/corrupt/``."""
    target = os.path.join(directory, CORRUPT_SUBDIR)
    os.makedirs(target, exist_ok=True)
    for path in glob.glob(glob.escape(prefix) + ".*"):
        os.replace(path, os.path.join(target, os.path.basename(path)))
    logging.warning("Moved the damaged checkpoint %s to %s.", prefix, target)


def _write_state(directory, prefixes):
    """Writes the CheckpointManager state file listing ``prefixes`` (newest first) so that
    the manager keeps managing them: the newest is the latest, all may be deleted in turn."""
    names = [os.path.basename(p) for p in reversed(prefixes)]
    times = [os.path.getmtime(p + ".index") for p in reversed(prefixes)]
    lines = [f'model_checkpoint_path: "{names[-1]}"']
    lines += [f'all_model_checkpoint_paths: "{name}"' for name in names]
    lines += [f"all_model_checkpoint_timestamps: {t!r}" for t in times]
    lines.append(f"last_preserved_timestamp: {min(times) - 1.0!r}")
    with atomic_output_file(os.path.join(directory, STATE_FILENAME)) as tmp:
        with open(tmp, "w", encoding="utf-8") as f:
            f.write("\n".join(lines) + "\n")


def moments_path(train_dir):
    """Where a SpecGAN run keeps its spectrogram moments."""
    return os.path.join(train_dir, MOMENTS_FILENAME)


def load_moments(train_dir):
    """The :class:`~wavegan_tf.audio.spectrogram.SpectrogramMoments` of the SpecGAN run in
    ``train_dir``; FileNotFoundError or ValueError naming the file."""
    path = moments_path(train_dir)
    if not os.path.isfile(path):
        raise FileNotFoundError(
            f"no {MOMENTS_FILENAME} in {train_dir!r}: a SpecGAN run writes it when it starts, "
            "and its checkpoints cannot be used without it")
    return SpectrogramMoments.load(path)


def load_config(train_dir):
    """The :class:`GANConfig` of ``train_dir``'s ``config.json``, with every problem of the
    file (not a JSON object, an unknown key, a value of the wrong type or range) a ValueError
    naming it, and FileNotFoundError when there is none."""
    path = os.path.join(train_dir, CONFIG_FILENAME)
    if not os.path.isfile(path):
        return GANConfig.load(train_dir)  # its error names the directory
    values = read_fields(path, "run configuration", dataclasses.fields(GANConfig))
    try:
        config = GANConfig.from_dict(values)
    except (ValueError, TypeError) as err:
        raise ValueError(f"cannot use run configuration {path!r}: {err}") from None
    problem = _size_problem(config)
    if problem:
        raise ValueError(f"cannot use run configuration {path!r}: {problem}")
    return config


# Most weights a config may describe before anything is built (2**30: 4 GiB of float32, thirty
# times the paper's G and D, model_dim 256 fits): more means a damaged or hostile config.json,
# which must not make a loader allocate what it claims.
MAX_CONFIG_WEIGHTS = 2**30
# libsndfile's most channels of a file.
MAX_CHANNELS = 1024
_SIZE_FIELDS = ("slice_len", "sample_rate", "num_channels", "model_dim", "latent_dim",
                "kernel_len")


def _size_problem(config):
    """Why ``config``'s sizes cannot be built (non-positive, or far too many weights), or None."""
    for name in _SIZE_FIELDS:
        if getattr(config, name) < 1:
            return f"{name} must be >= 1, got {getattr(config, name)!r}"
    if config.num_channels > MAX_CHANNELS:
        return f"num_channels={config.num_channels} is more than audio files hold ({MAX_CHANNELS})"
    if config.post_proc_filt_len > config.slice_len:
        return (f"post_proc_filt_len={config.post_proc_filt_len} is longer than the clips "
                f"(slice_len={config.slice_len})")
    d, k = config.model_dim, config.kernel_len
    classes = len(config.class_names or ())
    # About the weights of G and D: the dense layers, the convolutions (16d x 8d down to d x
    # channels, twice), the label embedding and the post-processing filter.
    channels = config.num_channels
    weights = (config.latent_dim + classes + 2) * 256 * d + 340 * k * d * d \
        + 8 * k * d * channels + classes * config.latent_dim \
        + config.post_proc_filt_len * channels ** 2
    if weights > MAX_CONFIG_WEIGHTS:
        return (f"its sizes (model_dim={d}, kernel_len={k}, latent_dim={config.latent_dim}, "
                f"num_channels={config.num_channels}) describe about {weights:.2e} weights, more "
                f"than {MAX_CONFIG_WEIGHTS:.2e}: the file is damaged")
    return None


def load_generator(train_dir, averaged=True):
    """Rebuilds G from ``train_dir``'s config and restores it from the newest usable checkpoint.

    The checkpoint's averaged G is restored when it holds one (a run with ``ema_decay``) and
    ``averaged`` is true, else the trained G. Returns ``(config, generator, step)``, the
    generator a model from z to audio (for SpecGAN, G followed by Griffin-Lim with the run's
    spectrogram moments). Raises FileNotFoundError naming the directory when it has no config
    or no checkpoint (or a SpecGAN run no moments), and CorruptCheckpointError naming each
    checkpoint when all of them are damaged.
    """
    config = load_config(train_dir)
    config_path = os.path.join(train_dir, CONFIG_FILENAME)
    generator = None
    for attempt in range(_LOAD_ATTEMPTS):
        path, _ = usable_checkpoint(train_dir)
        if path is None:
            raise FileNotFoundError(
                f"no checkpoint in {checkpoint_dir(train_dir)!r}: train first (train.py "
                f"--train_dir {train_dir}) or wait for the first save")
        if generator is None:
            try:
                generator = config.build_generator()
            except (ValueError, TypeError) as err:
                raise ValueError(f"cannot build the generator of run configuration "
                                 f"{config_path!r}: {_first_line(err)}") from None
        step = tf.Variable(0, dtype=tf.int64)
        try:
            name = AVERAGE_NAME if averaged and holds_average(path) else "generator"
            tf.train.Checkpoint(**{name: generator}, step=step).restore(path).expect_partial()
            break
        except (ValueError, RuntimeError, tf.errors.OpError) as err:
            if not os.path.exists(path + ".index") and attempt + 1 < _LOAD_ATTEMPTS:
                continue  # a running trainer deleted it after it was chosen: choose again
            raise ValueError(f"checkpoint {path!r} does not fit the generator of run "
                             f"configuration {config_path!r} (was config.json edited?): "
                             f"{_first_line(err)}") from None
    moments = load_moments(train_dir) if config.model == "specgan" else None
    return config, config.build_audio_generator(generator, moments), int(step.numpy())


# Choices of a checkpoint by a loader whose chosen one a running trainer may delete meanwhile.
_LOAD_ATTEMPTS = 5


def _first_line(err):
    text = str(err).strip() or type(err).__name__
    return text.splitlines()[0]
