"""Training a WaveGAN from a folder of audio: the loop behind ``train.py``.

:func:`train` runs ``model.fit`` of a :class:`~wavegan_tf.training.gan.GANTrainer` over
``critic_batches(audio_dataset(...), n_critic)`` until the run's step counter (completed
generator steps) reaches ``train_steps``, and keeps everything a run needs in its training
directory::

    TRAIN_DIR/
      config.json        the GANConfig (architecture, objective, batch size, seed)
      training.json      the TrainingOptions (data_dir, train_steps, save/preview intervals, ...)
      checkpoints/       tf.train.CheckpointManager files: G, D, both optimizers, step, RNG state
                         (and G's weight average with ema_decay > 0)
      logs/              TensorBoard events: d_loss, g_loss, wasserstein, gp per step, and
                         "generated" and "real" audio at every preview
      preview_z.npy      the fixed z of the previews, drawn once from the seed
      spectrogram_moments.json
                         SpecGAN only: the per-bin moments of the training data's log
                         spectrograms, computed when the run starts (wavegan_tf.audio.spectrogram)
      previews/          step_<N>.wav: the preview clips at step N, 0.5 s of silence after each
                         (a conditional run: the same z for every class, class by class)
      export/            the exported generator (wavegan_tf.serving.export), when the run finishes

Conditional runs (``conditional=True``): the data folder holds one subfolder per class; the
classes (sorted subfolder names, or the ``class_names`` given) are saved in ``config.json`` as
``class_names`` and fixed for the run, and G and D take the label as a second input (see
:mod:`wavegan_tf.training.gan`).

SpecGAN runs (``model="specgan"``): G generates normalised spectrograms and D judges them. The
real batches are turned into spectrograms in the input pipeline, with the moments computed
from one pass over the data at the start of the run (every window, zero-padded at the end, in
file order) and read back on resume, so :class:`~wavegan_tf.training.gan.GANTrainer` trains SpecGAN
unchanged. Previews, evaluation and the export hear G through Griffin-Lim
(``griffin_lim_iters``).

The settings files are written once the data has loaded, so a call that fails before (a data folder
that does not exist, no usable audio) leaves nothing that would fix the next call's settings.
Resuming: calling :func:`train` again on the same directory restores the newest checkpoint and
continues the step count. The saved ``config.json`` and ``training.json`` are the run's settings;
only the values passed explicitly are applied on top of them. Values that shape the weights or the
optimizer state, and the seed (:data:`FIXED_ON_RESUME`), cannot change: passing a different one is
a ``ValueError`` naming each field with its saved and given value. Everything else (e.g.
``train_steps``, learning rates, ``n_critic``, ``batch_size``, ``data_dir``, ``augment``,
``ema_decay``) may change and the new value is saved. Weight averaging turned on at a resume starts
from the restored G; turned off, the saved average is dropped. The data stream of a resumed run is
seeded from (seed, start step), so it does not replay the batches the run began with.

With ``ema_decay > 0`` the previews, the evaluations, the best generator and the export are of
G's weight average (:attr:`wavegan_tf.training.gan.GANTrainer.sampling_generator`).

Checkpoints are written every ``save_every_steps`` steps, after the first step that ends
``save_every_secs`` seconds after the previous save, at the end of the run and when SIGINT or
SIGTERM asks the run to stop: the signal is noted, the current step finishes, a checkpoint is
saved and :func:`train` returns with ``interrupted_by`` set (a second SIGINT aborts at once
without saving). A NaN or infinite loss raises :class:`TrainingDiverged` without saving the
diverged state, so the newest checkpoint is the last good one. Before any save the weights are
checked to be finite, for the same reason.

Durability. A run survives being killed at any moment (even with SIGKILL or a crash of the
machine): running the same command again resumes from the newest checkpoint that reads back
completely, losing at most one save interval, with the step count, both optimizers, the RNG
state and the preview z exactly as saved. Damaged checkpoints (truncated or missing files) are
named in a warning and moved to ``checkpoints/corrupt/``, and the previous one is used; with no
readable checkpoint left, :func:`train` raises CorruptCheckpointError naming them rather than
starting over (see :mod:`wavegan_tf.training.checkpoints`). Every other file of the run is written under a
temporary name and renamed into place; leftovers of interrupted writes are removed on resume.

One trainer per directory. :func:`train` holds ``TRAIN_DIR/.lock`` (:class:`~wavegan_tf.files.locks.
RunLock`) while it runs: a second trainer on the same directory fails at once with
TrainDirInUse naming the first one's pid, host and start time; a lock left by a process that
no longer runs is taken over with a warning.

A failed save stops the run. When a checkpoint cannot be written (a full disk, a folder that
became unwritable), :func:`train` deletes what the failed save left and raises
CheckpointSaveError (an OSError) naming the folder, the reason and the newest complete
checkpoint, which stays loadable; a preview that cannot be written stops the run the same way.
Stopping rather than training on means no work is done that could not be kept: free space and
run the same command again to resume.
"""

import contextlib
import dataclasses
import json
import math
import os
import signal
import time

import keras
import numpy as np
import soundfile
import tensorflow as tf
from absl import logging

from wavegan_tf.training import checkpoints, losses
from wavegan_tf.files.atomic_files import atomic_output_file, remove_temp_files
from wavegan_tf.cpu.bfloat16_support import warn_if_emulated
from wavegan_tf.training.callbacks import (EveryNSteps, NonFiniteLossCheck, ScalarSummaries,
                                  StepCounter, StopOnRequest, Throughput, TrainingDiverged)
from wavegan_tf.training.config import ARCHITECTURE_FIELDS, CONFIG_FILENAME, GANConfig
from wavegan_tf.training.distribute import (STRATEGIES, ChiefCheckpointManager,
                                   distributed_audio_dataset, is_chief, make_strategy,
                                   replica_batch_size)
from wavegan_tf.cpu.dtype_policy import global_dtype_policy
from wavegan_tf.training.gan import critic_batches
from wavegan_tf.files.json_files import read_json
from wavegan_tf.files.locks import RunLock
from wavegan_tf.training.previews import (PREVIEWS_SUBDIR, Previewer, load_or_create_preview_z,
                                 preview_path)
from wavegan_tf.audio.spectrogram import audio_to_spectrogram, compute_moments

__all__ = [
    "FIXED_ON_RESUME", "TrainingDiverged", "TrainingOptions", "TrainingResult",
    "default_data_dir", "default_train_dir", "resolve_run", "train",
]

OPTIONS_FILENAME = "training.json"
LOGS_SUBDIR = "logs"
# Generator steps per Keras epoch: the length of one progress-bar line.
STEPS_PER_EPOCH = 100
# Keras dtype policies of --mixed_precision; "none" is plain float32.
MIXED_PRECISION_POLICIES = ("none", "mixed_bfloat16", "mixed_float16")
# Config fields a resumed run must keep: they fix the weights' shapes, the meaning of the
# optimizer state, or (the seed) the initial weights, the RNG stream and the preview z.
FIXED_ON_RESUME = ARCHITECTURE_FIELDS + ("seed",)
_REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _demo_data_dir():
    """``data/demo_drums`` of the source checkout this package runs from (one with
    ``pyproject.toml`` beside the package: a clone, or an editable install), else
    ``data/demo_drums`` under the current directory (an installed package)."""
    if os.path.isfile(os.path.join(_REPO_ROOT, "pyproject.toml")):
        return os.path.join(_REPO_ROOT, "data", "demo_drums")
    return os.path.join("data", "demo_drums")


DEMO_DATA_DIR = _demo_data_dir()


@dataclasses.dataclass
class TrainingOptions:
    """How a run is driven, as opposed to what is trained (that is the GANConfig).

    Attributes:
        data_dir: folder of training audio; None means the built-in demo drum dataset
            (:data:`DEMO_DATA_DIR`, synthesised on first use).
        train_steps: total generator steps of the run, counting those before a resume.
        save_every_steps: checkpoint every this many steps (0 = only by time and at the end).
        save_every_secs: checkpoint after the first step this many seconds after the last save
            (0 = off).
        preview_every_steps: write a preview every this many steps (0 = only at the end).
        keep_checkpoints: newest checkpoints kept on disk (older ones are deleted).
        export: export the generator (wavegan_tf.serving.export) when the run reaches train_steps.
        strategy: the ``tf.distribute`` strategy (:data:`wavegan_tf.training.distribute.STRATEGIES`);
            ``batch_size`` is then the global batch over all replicas.
        tpu: the TPU name or address for strategy "tpu" (None: found by TPUClusterResolver).
        mixed_precision: the Keras dtype policy of training, one of
            :data:`MIXED_PRECISION_POLICIES` ("none" = float32). A run cannot switch
            mixed_float16 on or off on resume: its optimizers carry a loss scale.
        jit_compile: compile the train step with XLA (for GPU/TPU; slower on CPU).
        micro_batches: split each replica's batch into this many equal parts, one after the
            other, whose gradients are summed: lower peak memory, the same update
            (:class:`wavegan_tf.GANTrainer`); it must divide the batch of each replica.
        eval_every_steps: score G every this many steps with ``eval_classifier`` (0 = off);
            see :mod:`wavegan_tf.eval.during_training`.
        eval_classifier: the ``.keras`` classifier of ``evaluate.py train_classifier``.
        eval_n: clips generated (from fixed z) per evaluation.
    """

    data_dir: str = None
    train_steps: int = 100000
    save_every_steps: int = 1000
    save_every_secs: float = 600.0
    preview_every_steps: int = 1000
    keep_checkpoints: int = 5
    export: bool = True
    strategy: str = "default"
    tpu: str = None
    mixed_precision: str = "none"
    jit_compile: bool = False
    micro_batches: int = 1
    eval_every_steps: int = 0
    eval_classifier: str = None
    eval_n: int = 1000

    def __post_init__(self):
        for name in ("train_steps", "save_every_steps", "preview_every_steps",
                     "eval_every_steps"):
            _check_int(name, getattr(self, name), minimum=0)
        _check_int("keep_checkpoints", self.keep_checkpoints, minimum=1)
        _check_int("micro_batches", self.micro_batches, minimum=1)
        _check_int("eval_n", self.eval_n, minimum=1)
        if not self.save_every_secs >= 0:
            raise ValueError(f"save_every_secs must be >= 0, got {self.save_every_secs!r}")
        _check_choice("strategy", self.strategy, STRATEGIES)
        _check_choice("mixed_precision", self.mixed_precision, MIXED_PRECISION_POLICIES)
        if self.tpu is not None and self.strategy != "tpu":
            raise ValueError(f"tpu={self.tpu!r} is only used with strategy 'tpu', got "
                             f"strategy={self.strategy!r}")
        if self.eval_every_steps and not self.eval_classifier:
            raise ValueError("eval_every_steps needs eval_classifier: the path of a classifier "
                             "trained with 'evaluate.py train_classifier'")
        if self.eval_every_steps and self.strategy == "multi_worker":
            raise ValueError("eval_every_steps is not supported with strategy 'multi_worker'; "
                             "score checkpoints with 'evaluate.py score' instead")

    def save(self, directory):
        """Writes ``training.json`` into ``directory`` atomically."""
        path = os.path.join(directory, OPTIONS_FILENAME)
        with atomic_output_file(path) as tmp, open(tmp, "w", encoding="utf-8") as f:
            json.dump(dataclasses.asdict(self), f, indent=2, sort_keys=True)
            f.write("\n")
        return path

    @classmethod
    def load(cls, directory):
        """Reads ``training.json``; the defaults when the directory has none."""
        path = os.path.join(directory, OPTIONS_FILENAME)
        if not os.path.exists(path):
            return cls()
        return _replace(cls(), read_json(path, "training options"), source=path)


@dataclasses.dataclass
class TrainingResult:
    """What :func:`train` did.

    Attributes:
        start_step: the step the run started (or resumed) at.
        step: completed generator steps at the end.
        checkpoint: path prefix of the newest checkpoint (None if there is none).
        interrupted_by: the signal number that stopped training early, else None.
        export_dir: where the generator was exported, else None.
    """

    start_step: int
    step: int
    checkpoint: str = None
    interrupted_by: int = None
    export_dir: str = None


def default_train_dir():
    """``runs/<YYYYmmdd-HHMMSS>`` under the current directory, for a new run."""
    return os.path.join("runs", time.strftime("%Y%m%d-%H%M%S"))


def default_data_dir():
    """The demo drum dataset, synthesised into :data:`DEMO_DATA_DIR` on first use (a relative
    :data:`DEMO_DATA_DIR` is taken from the current directory)."""
    from wavegan_tf.audio.demo_data import ensure_demo_dataset

    return ensure_demo_dataset(DEMO_DATA_DIR)


def resolve_run(train_dir, config_values=None, option_values=None):
    """The (config, options) of a run in ``train_dir`` with the given values applied.

    A directory without ``config.json`` starts a new run: defaults plus the given values. One
    with it continues that run: the saved values plus the given ones, where a given value of a
    :data:`FIXED_ON_RESUME` field must equal the saved value (ValueError otherwise, naming the
    field, the saved value and the given value).
    """
    config_values = dict(config_values or {})
    option_values = dict(option_values or {})
    if not os.path.exists(os.path.join(train_dir, CONFIG_FILENAME)):
        model = config_values.get("model", GANConfig.model)
        return (_replace(GANConfig.for_model(model), config_values, source="config"),
                _replace(TrainingOptions(), option_values, source="options"))
    saved = GANConfig.load(train_dir)
    conflicts = [f"{name}: saved {getattr(saved, name)!r}, given {value!r}"
                 for name, value in sorted(config_values.items())
                 if name in FIXED_ON_RESUME and value != getattr(saved, name)]
    if conflicts:
        raise ValueError(
            f"{train_dir!r} holds a run with different settings that cannot change on resume "
            f"({'; '.join(conflicts)}); drop these flags to continue that run, or choose a new "
            "train_dir")
    saved_options = TrainingOptions.load(train_dir)
    given_policy = option_values.get("mixed_precision", saved_options.mixed_precision)
    if "mixed_float16" in (given_policy, saved_options.mixed_precision) and \
            given_policy != saved_options.mixed_precision:
        raise ValueError(
            f"{train_dir!r} was trained with mixed_precision={saved_options.mixed_precision!r}; "
            f"it cannot resume with mixed_precision={given_policy!r} because mixed_float16 "
            "optimizers carry a loss scale that the others do not. Drop the flag to continue, "
            "or choose a new train_dir")
    return (_replace(saved, config_values, source="config"),
            _replace(saved_options, option_values, source="options"))


def train(train_dir, config_values=None, option_values=None, verbose=1, strategy=None):
    """Trains (or resumes) the run in ``train_dir``; see the module doc for the layout.

    Args:
        train_dir: the training directory; created if missing.
        config_values: GANConfig fields to set (see :func:`resolve_run` for resume).
        option_values: TrainingOptions fields to set.
        verbose: ``model.fit`` verbosity (1: progress bar with losses and it/s).
        strategy: a ``tf.distribute.Strategy`` to train under instead of the one the options
            name (e.g. a MirroredStrategy over chosen devices).

    Under a strategy with several workers (multi_worker) every worker calls this with the same
    ``train_dir`` on shared storage; only the chief (:func:`wavegan_tf.training.distribute.is_chief`)
    locks the directory and writes the settings, logs, previews, checkpoints and export, and
    checkpoints are saved by step count only (``save_every_secs`` is ignored).

    Returns:
        A :class:`TrainingResult`.

    Raises:
        ValueError: a bad or conflicting setting, or unusable data (from the data module).
        FileNotFoundError: ``data_dir`` does not exist.
        OSError: ``train_dir`` cannot be written.
        wavegan_tf.files.locks.TrainDirInUse: (an OSError) another live trainer holds ``train_dir``.
        wavegan_tf.training.checkpoints.CheckpointSaveError: (an OSError) a checkpoint or preview could
            not be written; the newest complete checkpoint stays loadable.
        wavegan_tf.training.checkpoints.CorruptCheckpointError: (a ValueError) every checkpoint in
            ``train_dir`` is damaged.
        TrainingDiverged: a loss became NaN/inf; the newest checkpoint is the last good one.
    """
    config, options = resolve_run(train_dir, config_values, option_values)
    strategy = strategy or _make_strategy(options)
    _check_micro_batches(config, options, strategy)
    chief = is_chief(strategy)
    if chief:
        _prepare_train_dir(train_dir)
    with RunLock(train_dir) if chief else contextlib.nullcontext(), \
            global_dtype_policy(_policy_name(options.mixed_precision)):
        return _train_locked(_Run(train_dir, config, options, strategy, chief), verbose)


@dataclasses.dataclass
class _Run:
    """What the steps of :func:`train` share: the settings and where the run executes."""

    train_dir: str
    config: GANConfig
    options: TrainingOptions
    strategy: tf.distribute.Strategy
    chief: bool
    # SpecGAN's spectrogram moments (None for WaveGAN).
    moments: object = None

    @property
    def distributed(self):
        """True under a strategy other than TensorFlow's default one."""
        return self.strategy is not tf.distribute.get_strategy()

    @property
    def multi_worker(self):
        """True under MultiWorkerMirroredStrategy, whose workers must save together."""
        return isinstance(self.strategy, tf.distribute.MultiWorkerMirroredStrategy)


def _check_micro_batches(config, options, strategy):
    """ValueError unless ``micro_batches`` divides the batch of each replica."""
    per_replica = replica_batch_size(strategy, config.batch_size)
    if per_replica % options.micro_batches:
        raise ValueError(
            f"micro_batches={options.micro_batches} must divide the batch of each replica: "
            f"batch_size={config.batch_size} over {strategy.num_replicas_in_sync} replica(s) "
            f"is {per_replica} examples per replica")


def _make_strategy(options):
    """The strategy the options name; a TPU that cannot be reached is a ValueError."""
    try:
        return make_strategy(options.strategy, options.tpu)
    except (tf.errors.OpError, RuntimeError) as err:
        raise ValueError(f"cannot start strategy {options.strategy!r}"
                         f"{f' on tpu={options.tpu!r}' if options.tpu else ''}: "
                         f"{_reason(err) if isinstance(err, tf.errors.OpError) else err}") from err


def _policy_name(mixed_precision):
    """The Keras dtype policy of a ``mixed_precision`` option ("none" is plain float32)."""
    return "float32" if mixed_precision == "none" else mixed_precision


def _train_locked(run, verbose):
    """:func:`train` once this process owns ``train_dir`` (or is a non-chief worker)."""
    if run.chief:
        _remove_temp_files(run.train_dir)
    data_dir = run.options.data_dir or default_data_dir()
    run.options = dataclasses.replace(run.options, data_dir=os.path.abspath(data_dir))
    if run.config.conditional:
        run.config = _with_class_names(run.config, run.options.data_dir)
    config, options = run.config, run.options
    keras.utils.set_random_seed(config.seed)
    with run.strategy.scope():
        gan = config.build_gan(jit_compile=options.jit_compile,
                               micro_batches=options.micro_batches)
    step = tf.Variable(0, dtype=tf.int64, name="step")
    saver = _CheckpointSaver(gan, step, run)
    saver.restore()
    _set_learning_rates(gan, config)
    start = int(step.numpy())
    if config.model == "specgan":
        run.moments = _spectrogram_moments(run, resuming=saver.resume_from is not None)
    data = None
    if start < options.train_steps:
        data = _training_data(run, _data_seed(config.seed, start))
    # Written only once the data has loaded: a run that fails before (a mistyped data_dir)
    # leaves no settings behind that would pin the corrected run to its flags.
    if run.chief:
        config.save(run.train_dir)
        options.save(run.train_dir)
    _log_run(run, start)
    result = TrainingResult(start_step=start, step=start, checkpoint=saver.latest())
    if data is not None:
        result = _fit(gan, step, saver, run, data, verbose)
    else:
        logging.info("Step %d already reaches train_steps=%d: nothing to train.", start,
                     options.train_steps)
    if options.export and run.chief and result.interrupted_by is None and result.checkpoint:
        result.export_dir = _export(run.train_dir)
    return result


def _spectrogram_moments(run, resuming):
    """The SpecGAN run's spectrogram moments: read back when saved, else computed from the
    data and saved (by the chief). A resumed run without them is an error: new moments would
    change what its checkpoints were trained on."""
    path = checkpoints.moments_path(run.train_dir)
    if os.path.exists(path) or resuming:
        return checkpoints.load_moments(run.train_dir)
    moments = data_moments(run.config, run.options.data_dir)
    logging.info("Spectrogram moments from %d frames of %s", moments.num_frames,
                 run.options.data_dir)
    if run.chief:
        moments.save(path)
    return moments


def data_moments(config, data_dir):
    """SpecGAN's spectrogram moments of ``data_dir``: over every window of the data in file
    order, the last zero-padded."""
    from wavegan_tf.audio.data import audio_dataset

    windows = audio_dataset(data_dir, slice_len=config.slice_len, sample_rate=config.sample_rate,
                            num_channels=config.num_channels, batch_size=1, pad_end=True,
                            shuffle=False, repeat=False, seed=config.seed)
    return compute_moments(windows.batch(64))


def _with_class_names(config, data_dir):
    """``config`` with the classes of ``data_dir`` (its sorted class subfolders) when it has
    none yet; a resumed run's saved classes are checked to be subfolders of ``data_dir``."""
    from wavegan_tf.audio.data import check_class_names

    class_names = check_class_names(data_dir, config.class_names)
    logging.info("Conditional run: %d classes %s", len(class_names), class_names)
    return dataclasses.replace(config, class_names=class_names)


def _fit(gan, step, saver, run, data, verbose):
    """Runs model.fit over ``data`` (from :func:`_training_data`) from the current step to
    ``train_steps``; saves and previews at the end."""
    start = int(step.numpy())
    real, sample = data
    writer = (tf.summary.create_file_writer(os.path.join(run.train_dir, LOGS_SUBDIR))
              if run.chief else tf.summary.create_noop_writer())
    previewer = _make_previewer(gan, sample, run, writer) if run.chief else None
    try:
        with _StopSignals() as stop:
            callbacks = _callbacks(gan, step, saver, previewer, writer, run)
            callbacks.append(StopOnRequest(lambda: stop.signum is not None))
            gan.fit(real, callbacks=callbacks, shuffle=False, verbose=verbose,
                    **_epochs(start, run.options.train_steps))
            end = int(step.numpy())
            if previewer is not None and previewer.last_step != end:
                _write_preview(previewer, saver, end)
            saver.save(end)
    except TrainingDiverged as err:
        raise TrainingDiverged(
            f"training diverged: {err}. The diverged state was not saved; the newest "
            f"checkpoint is {saver.describe_latest()}. Resume from it with a lower learning "
            "rate (--g_learning_rate/--d_learning_rate) or check the data for extreme "
            "values.") from None
    finally:
        writer.close()
    if stop.signum is not None:
        logging.warning("Stopped by %s at step %d; saved %s. Run again with the same train_dir "
                        "to resume.", signal.Signals(stop.signum).name, end, saver.latest())
    else:
        logging.info("Finished at step %d; saved %s.", end, saver.latest())
    return TrainingResult(start_step=start, step=end, checkpoint=saver.latest(),
                          interrupted_by=stop.signum)


def _training_data(run, seed):
    """(what ``fit`` reads, a few real clips for the previews).

    Under a distribution strategy ``fit`` reads a distributed dataset of critic stacks
    (:func:`wavegan_tf.training.distribute.distributed_audio_dataset`) and the real clips come from a
    plain pipeline built on the chief only.
    """
    config = run.config
    if not run.distributed:
        batches = _audio_batches(config, run.options.data_dir, seed)
        real = model_inputs(batches, run.moments)
        return critic_batches(real, config.n_critic), _first_audio(batches)
    real = distributed_audio_dataset(
        run.strategy, run.options.data_dir, global_batch_size=config.batch_size,
        n_critic=config.n_critic, seed=seed,
        transform=lambda batches: model_inputs(batches, run.moments),
        slice_len=config.slice_len, sample_rate=config.sample_rate,
        num_channels=config.num_channels, **_label_options(config))
    sample = None
    if run.chief:
        sample = _first_audio(_audio_batches(config, run.options.data_dir, seed))
    return real, sample


def model_inputs(batches, moments):
    """The real batches as D takes them: audio, or (SpecGAN, with ``moments``) spectrograms."""
    if moments is None:
        return batches
    return batches.map(lambda audio: audio_to_spectrogram(audio, moments.mean, moments.std),
                       num_parallel_calls=tf.data.AUTOTUNE)


def _audio_generator(gan, run):
    """The G to listen to (the weight average when there is one) as a model from z to audio
    (SpecGAN: followed by Griffin-Lim)."""
    return run.config.build_audio_generator(gan.sampling_generator, run.moments)


def _first_audio(batches):
    """The audio of the first batch (without its labels, for a labelled dataset)."""
    first = next(iter(batches))
    return (first[0] if isinstance(first, tuple) else first).numpy()


def _label_options(config):
    """``audio_dataset`` arguments that make it yield the labels of a conditional run."""
    if not config.conditional:
        return {}
    return dict(labels=True, class_names=config.class_names)


def _make_previewer(gan, sample, run, writer):
    """A Previewer with the run's preview z and, for comparison, a few real clips."""
    z = load_or_create_preview_z(run.train_dir, run.config.latent_dim, run.config.seed)
    return Previewer(_audio_generator(gan, run), z, run.train_dir, run.config.sample_rate, writer,
                     sample[:min(len(sample), len(z))], class_names=run.config.class_names)


def _callbacks(gan, step, saver, previewer, writer, run):
    """The per-step callbacks, in the order :mod:`wavegan_tf.training.callbacks` requires."""
    options = run.options
    callbacks = [
        NonFiniteLossCheck(step),
        StepCounter(step, options.train_steps),
        Throughput(),
        ScalarSummaries(writer, step),
    ]
    if previewer is not None:
        callbacks.append(EveryNSteps(step, lambda at: _write_preview(previewer, saver, at),
                                     every=options.preview_every_steps))
    if options.eval_every_steps:
        evaluation = _make_evaluation(gan, run, writer)
        callbacks.append(EveryNSteps(step, evaluation, every=options.eval_every_steps))
    # Workers of a multi-worker run save together, so only at the same step counts.
    every_secs = 0.0 if run.multi_worker else options.save_every_secs
    callbacks.append(EveryNSteps(step, saver.save, every=options.save_every_steps,
                                 every_secs=every_secs))
    return callbacks


def _make_evaluation(gan, run, writer):
    """The ``--eval_every_steps`` hook (:class:`wavegan_tf.eval.during_training.
    PeriodicEvaluation`) with the run's classifier, loaded once here."""
    from wavegan_tf.eval.during_training import PeriodicEvaluation
    from wavegan_tf.eval.scoring import make_eval_fn

    eval_fn = make_eval_fn(run.options.eval_classifier, n=run.options.eval_n,
                           seed=run.config.seed, splits=min(10, run.options.eval_n),
                           sample_rate=run.config.sample_rate,
                           class_names=run.config.class_names)
    return PeriodicEvaluation(eval_fn, _audio_generator(gan, run), run.config, run.train_dir,
                              writer)


def _epochs(start, train_steps):
    """fit's epoch arguments for steps ``start + 1 .. train_steps``, in epochs of at most
    :data:`STEPS_PER_EPOCH` steps numbered so that the epoch count continues on resume."""
    remaining = train_steps - start
    epoch_steps = min(STEPS_PER_EPOCH, remaining)
    initial_epoch = start // epoch_steps
    return dict(steps_per_epoch=epoch_steps, initial_epoch=initial_epoch,
                epochs=initial_epoch + math.ceil(remaining / epoch_steps))


def _write_preview(previewer, saver, step):
    """Writes the preview of ``step``; a file that cannot be written stops the run like a
    failed checkpoint save (CheckpointSaveError)."""
    try:
        previewer.write(step)
    except (OSError, soundfile.SoundFileError) as err:
        raise checkpoints.CheckpointSaveError(
            f"cannot write the preview of step {step} in "
            f"{os.path.dirname(preview_path(previewer.train_dir, step))!r} ({err}). "
            f"Training stopped; the newest checkpoint is {saver.describe_latest()}. Free disk "
            "space (or fix the folder's permissions) and run the same command again to "
            "resume.") from err


class _CheckpointSaver:
    """The run's checkpoints; saves only finite weights and at most once per step.

    On the chief, creation prepares the checkpoint folder for resuming
    (:func:`wavegan_tf.training.checkpoints.prepare_resume`), so the caller must own the training
    directory; other workers of a multi-worker run only read it. Saving goes through a
    :class:`~wavegan_tf.training.distribute.ChiefCheckpointManager`: every worker calls :meth:`save`,
    only the chief's files are kept.
    """

    def __init__(self, gan, step, run):
        self.gan = gan
        self.directory = checkpoints.checkpoint_dir(run.train_dir)
        self.checkpoint = checkpoints.make_checkpoint(gan, step)
        if run.chief:
            self.resume_from = checkpoints.prepare_resume(run.train_dir)
        else:
            self.resume_from = checkpoints.usable_checkpoint(run.train_dir)[0]
        self.manager = ChiefCheckpointManager(
            self.checkpoint, self.directory, run.strategy,
            max_to_keep=run.options.keep_checkpoints,
            checkpoint_name=checkpoints.CHECKPOINT_PREFIX)
        self.last_step = None
        self.last_path = None

    def restore(self):
        """Restores the newest usable checkpoint, if any (the state then continues from it).

        Weight averaging may be switched on or off on resume: a run that turns it on starts the
        average from the restored G; one that turns it off drops the saved average.
        """
        path = self.resume_from
        if path:
            saved_average = checkpoints.holds_average(path)
            if self.gan.ema_generator is not None and not saved_average:
                checkpoints.make_checkpoint(self.gan, self.checkpoint.step,
                                            with_average=False).restore(
                    path).assert_existing_objects_matched()
                self.gan.reset_average()
                logging.info("Weight averaging starts at this resume, from the restored G.")
            elif self.gan.ema_generator is None and saved_average:
                self.checkpoint.restore(path).assert_existing_objects_matched().expect_partial()
                logging.info("Weight averaging is off: the averaged G of %s is not used.", path)
            else:
                self.checkpoint.restore(path).assert_existing_objects_matched()
            self.last_step = int(self.checkpoint.step.numpy())
            self.last_path = path
            logging.info("Resuming from %s (step %d).", path, self.last_step)

    def save(self, step):
        """Saves a checkpoint of ``step``; CheckpointSaveError (after deleting what the failed
        save left) when it cannot be written."""
        if step == self.last_step:
            return
        variables = (self.gan.sampling_generator.variables + self.gan.generator.variables
                     + self.gan.discriminator.variables)
        if not all(bool(keras.ops.all(keras.ops.isfinite(v))) for v in variables
                   if keras.backend.is_float_dtype(v.dtype)):
            raise TrainingDiverged(f"the weights hold NaN or infinite values at step {step}")
        try:
            path = self.manager.save(checkpoint_number=step)
        except (OSError, tf.errors.OpError) as err:
            with contextlib.suppress(OSError):
                checkpoints.remove_save_leftovers(self.directory)
            raise checkpoints.CheckpointSaveError(
                f"cannot save the checkpoint of step {step} in {self.directory!r} "
                f"({_reason(err)}). Training stopped; the newest complete checkpoint is "
                f"{self.describe_latest()}. Free disk space (or fix the folder's permissions) "
                "and run the same command again to resume.") from err
        self.last_step = step
        self.last_path = path or self.manager.latest_checkpoint

    def latest(self):
        return self.last_path

    def describe_latest(self):
        path = self.latest()
        return f"step {self.last_step} ({path})" if path else "none (nothing was saved yet)"


class _StopSignals:
    """While active, SIGINT and SIGTERM set ``signum`` instead of stopping the process.

    The first SIGINT also restores the default handler, so a second Ctrl-C aborts at once.
    Outside the main thread, where Python cannot install handlers, it does nothing.
    """

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self):
        self.signum = None
        self._previous = {}

    def __enter__(self):
        with contextlib.suppress(ValueError):
            for signum in self.SIGNALS:
                self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc):
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        return False

    def _handle(self, signum, frame):
        self.signum = signum
        if signum == signal.SIGINT:
            signal.signal(signal.SIGINT, signal.default_int_handler)
        logging.warning("%s received: saving a checkpoint after this step, then stopping "
                        "(press Ctrl-C again to abort without saving).",
                        signal.Signals(signum).name)


def _audio_batches(config, data_dir, seed):
    """The endless dataset of real batches ``[batch, slice_len, channels]`` for ``config``."""
    from wavegan_tf.audio.data import audio_dataset

    return audio_dataset(data_dir, slice_len=config.slice_len, sample_rate=config.sample_rate,
                         num_channels=config.num_channels, batch_size=config.batch_size,
                         seed=seed, **_label_options(config))


def _data_seed(seed, step):
    """Seed of the data stream for a run with ``seed`` starting at ``step``."""
    return int(np.random.SeedSequence([int(seed), int(step)]).generate_state(1)[0])


def _set_learning_rates(gan, config):
    """Applies the config's learning rates, which a restored checkpoint would otherwise set.

    A rate of 0 means the loss's default (:func:`wavegan_tf.training.losses.default_optimizers`).
    """
    default_g, default_d = losses.default_optimizers(config.loss)
    gan.g_optimizer.learning_rate = config.g_learning_rate or float(default_g.learning_rate)
    gan.d_optimizer.learning_rate = config.d_learning_rate or float(default_d.learning_rate)


def _reason(err):
    """The short reason of an OSError or a TF error, e.g. "No space left on device"."""
    if isinstance(err, tf.errors.OpError):
        return err.message.strip().splitlines()[0]
    return err.strerror or str(err)


def _remove_temp_files(train_dir):
    """Deletes temporary files that interrupted writes left in ``train_dir`` and its previews."""
    removed = []
    for directory in (train_dir, os.path.join(train_dir, PREVIEWS_SUBDIR)):
        if os.path.isdir(directory):
            removed += remove_temp_files(directory)
    if removed:
        logging.info("Removed %d temporary file(s) left by an interrupted run: %s",
                     len(removed), ", ".join(removed))


def _prepare_train_dir(train_dir):
    """Creates ``train_dir`` and checks that files can be written there (OSError if not)."""
    try:
        os.makedirs(train_dir, exist_ok=True)
        probe = os.path.join(train_dir, f".write-test-{os.getpid()}")
        with open(probe, "w"):
            pass
        os.remove(probe)
    except OSError as err:
        raise OSError(f"cannot write to train_dir {train_dir!r}: "
                      f"{err.strerror or err}") from err


def _log_run(run, start):
    train_dir, config, options = run.train_dir, run.config, run.options
    logging.info("Training directory: %s (%s from step %d to %d)", os.path.abspath(train_dir),
                 "resuming" if start else "starting", start, options.train_steps)
    logging.info("Data: %s", options.data_dir)
    logging.info("Checkpoints: %s, TensorBoard: %s, previews: %s",
                 checkpoints.checkpoint_dir(train_dir), os.path.join(train_dir, LOGS_SUBDIR),
                 os.path.join(train_dir, "previews"))
    logging.info("Config: %s", json.dumps(config.to_dict(), sort_keys=True))
    logging.info("Strategy: %s (%d replica(s)%s), precision: %s, XLA: %s, micro-batches: %d",
                 options.strategy, run.strategy.num_replicas_in_sync,
                 "" if run.chief else ", not the chief", options.mixed_precision,
                 "on" if options.jit_compile else "off", options.micro_batches)
    if options.mixed_precision == "mixed_bfloat16":
        warn_if_emulated("mixed_bfloat16 training")


def _export(train_dir):
    from wavegan_tf.serving.export import export_generator

    export_dir = export_generator(train_dir)
    logging.info("Exported the generator to %s", export_dir)
    return export_dir


def _replace(settings, values, source):
    """``settings`` with ``values`` set, naming unknown keys instead of ignoring them."""
    known = {f.name for f in dataclasses.fields(settings)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ValueError(f"unknown {source} keys {unknown}; known keys: {sorted(known)}")
    return dataclasses.replace(settings, **values)


def _check_choice(name, value, choices):
    if value not in choices:
        raise ValueError(f"{name} must be one of {list(choices)}, got {name}={value!r}")


def _check_int(name, value, minimum):
    if isinstance(value, bool) or int(value) != value or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {name}={value!r}")
