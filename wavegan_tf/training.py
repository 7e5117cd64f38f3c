"""Training a WaveGAN from a folder of audio: the loop behind ``train.py``.

:func:`train` runs ``model.fit`` of a :class:`~wavegan_tf.gan.WaveGAN` over
``critic_batches(audio_dataset(...), n_critic)`` until the run's step counter (completed
generator steps) reaches ``train_steps``, and keeps everything a run needs in its training
directory::

    TRAIN_DIR/
      config.json        the WaveGANConfig (architecture, objective, batch size, seed)
      training.json      the TrainingOptions (data_dir, train_steps, save/preview intervals, ...)
      checkpoints/       tf.train.CheckpointManager files: G, D, both optimizers, step, RNG state
      logs/              TensorBoard events: d_loss, g_loss, wasserstein, gp per step, and
                         "generated" and "real" audio at every preview
      preview_z.npy      the fixed z of the previews, drawn once from the seed
      previews/          step_<N>.wav: the preview clips at step N, 0.5 s of silence after each
      export/            the exported generator (wavegan_tf.export), when the run finishes

Resuming: calling :func:`train` again on the same directory restores the newest checkpoint and
continues the step count. The saved ``config.json`` and ``training.json`` are the run's settings;
only the values passed explicitly are applied on top of them. Values that shape the weights or
the optimizer state, and the seed (:data:`FIXED_ON_RESUME`), cannot change: passing a different
one is a ``ValueError`` naming each field with its saved and given value. Everything else (e.g.
``train_steps``, learning rates, ``n_critic``, ``batch_size``, ``data_dir``) may change and the
new value is saved. The data stream of a resumed run is seeded from (seed, start step), so it
does not replay the batches the run began with.

Checkpoints are written every ``save_every_steps`` steps, after the first step that ends
``save_every_secs`` seconds after the previous save, at the end of the run and when SIGINT or
SIGTERM asks the run to stop: the signal is noted, the current step finishes, a checkpoint is
saved and :func:`train` returns with ``interrupted_by`` set (a second SIGINT aborts at once
without saving). A NaN or infinite loss raises :class:`TrainingDiverged` without saving the
diverged state, so the newest checkpoint is the last good one. Before any save the weights are
checked to be finite, for the same reason.
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
import tensorflow as tf
from absl import logging

from wavegan_tf import checkpoints, losses
from wavegan_tf.callbacks import (EveryNSteps, NonFiniteLossCheck, ScalarSummaries,
                                  StepCounter, StopOnRequest, Throughput, TrainingDiverged)
from wavegan_tf.config import ARCHITECTURE_FIELDS, CONFIG_FILENAME, WaveGANConfig
from wavegan_tf.gan import critic_batches
from wavegan_tf.previews import Previewer, load_or_create_preview_z

__all__ = [
    "FIXED_ON_RESUME", "TrainingDiverged", "TrainingOptions", "TrainingResult",
    "default_data_dir", "default_train_dir", "resolve_run", "train",
]

OPTIONS_FILENAME = "training.json"
LOGS_SUBDIR = "logs"
# Generator steps per Keras epoch: the length of one progress-bar line.
STEPS_PER_EPOCH = 100
# Config fields a resumed run must keep: they fix the weights' shapes, the meaning of the
# optimizer state, or (the seed) the initial weights, the RNG stream and the preview z.
FIXED_ON_RESUME = ARCHITECTURE_FIELDS + ("seed",)
_REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEMO_DATA_DIR = os.path.join(_REPO_ROOT, "data", "demo_drums")


@dataclasses.dataclass
class TrainingOptions:
    """How a run is driven, as opposed to what is trained (that is the WaveGANConfig).

    Attributes:
        data_dir: folder of training audio; None means the built-in demo drum dataset
            (:data:`DEMO_DATA_DIR`, synthesised on first use).
        train_steps: total generator steps of the run, counting those before a resume.
        save_every_steps: checkpoint every this many steps (0 = only by time and at the end).
        save_every_secs: checkpoint after the first step this many seconds after the last save
            (0 = off).
        preview_every_steps: write a preview every this many steps (0 = only at the end).
        keep_checkpoints: newest checkpoints kept on disk (older ones are deleted).
        export: export the generator (wavegan_tf.export) when the run reaches train_steps.
    """

    data_dir: str = None
    train_steps: int = 100000
    save_every_steps: int = 1000
    save_every_secs: float = 600.0
    preview_every_steps: int = 1000
    keep_checkpoints: int = 5
    export: bool = True

    def __post_init__(self):
        for name in ("train_steps", "save_every_steps", "preview_every_steps"):
            _check_int(name, getattr(self, name), minimum=0)
        _check_int("keep_checkpoints", self.keep_checkpoints, minimum=1)
        if not self.save_every_secs >= 0:
            raise ValueError(f"save_every_secs must be >= 0, got {self.save_every_secs!r}")

    def save(self, directory):
        """Writes ``training.json`` into ``directory`` atomically."""
        path = os.path.join(directory, OPTIONS_FILENAME)
        tmp = path + ".tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(dataclasses.asdict(self), f, indent=2, sort_keys=True)
            f.write("\n")
        os.replace(tmp, path)
        return path

    @classmethod
    def load(cls, directory):
        """Reads ``training.json``; the defaults when the directory has none."""
        path = os.path.join(directory, OPTIONS_FILENAME)
        if not os.path.exists(path):
            return cls()
        try:
            with open(path, encoding="utf-8") as f:
                values = json.load(f)
        except (OSError, json.JSONDecodeError) as err:
            raise ValueError(f"cannot read training options {path!r}: {err}") from err
        return _replace(cls(), values, source=path)


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
    """The demo drum dataset, synthesised into :data:`DEMO_DATA_DIR` on first use."""
    from wavegan_tf.demo_data import ensure_demo_dataset

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
        return (_replace(WaveGANConfig(), config_values, source="config"),
                _replace(TrainingOptions(), option_values, source="options"))
    saved = WaveGANConfig.load(train_dir)
    conflicts = [f"{name}: saved {getattr(saved, name)!r}, given {value!r}"
                 for name, value in sorted(config_values.items())
                 if name in FIXED_ON_RESUME and value != getattr(saved, name)]
    if conflicts:
        raise ValueError(
            f"{train_dir!r} holds a run with different settings that cannot change on resume "
            f"({'; '.join(conflicts)}); drop these flags to continue that run, or choose a new "
            "train_dir")
    return (_replace(saved, config_values, source="config"),
            _replace(TrainingOptions.load(train_dir), option_values, source="options"))


def train(train_dir, config_values=None, option_values=None, verbose=1):
    """Trains (or resumes) the run in ``train_dir``; see the module doc for the layout.

    Args:
        train_dir: the training directory; created if missing.
        config_values: WaveGANConfig fields to set (see :func:`resolve_run` for resume).
        option_values: TrainingOptions fields to set.
        verbose: ``model.fit`` verbosity (1: progress bar with losses and it/s).

    Returns:
        A :class:`TrainingResult`.

    Raises:
        ValueError: a bad or conflicting setting, or unusable data (from the data module).
        FileNotFoundError: ``data_dir`` does not exist.
        OSError: ``train_dir`` cannot be written.
        TrainingDiverged: a loss became NaN/inf; the newest checkpoint is the last good one.
    """
    config, options = resolve_run(train_dir, config_values, option_values)
    _prepare_train_dir(train_dir)
    data_dir = options.data_dir or default_data_dir()
    options = dataclasses.replace(options, data_dir=os.path.abspath(data_dir))
    keras.utils.set_random_seed(config.seed)
    gan = config.build_gan()
    step = tf.Variable(0, dtype=tf.int64, name="step")
    saver = _CheckpointSaver(gan, step, train_dir, options.keep_checkpoints)
    saver.restore()
    _set_learning_rates(gan, config)
    start = int(step.numpy())
    real = None
    if start < options.train_steps:
        real = _audio_batches(config, options.data_dir, _data_seed(config.seed, start))
    config.save(train_dir)
    options.save(train_dir)
    _log_run(train_dir, config, options, start)
    result = TrainingResult(start_step=start, step=start, checkpoint=saver.latest())
    if real is not None:
        result = _fit(gan, step, saver, real, train_dir, config, options, verbose)
    else:
        logging.info("Step %d already reaches train_steps=%d: nothing to train.", start,
                     options.train_steps)
    if options.export and result.interrupted_by is None and result.checkpoint:
        result.export_dir = _export(train_dir)
    return result


def _fit(gan, step, saver, real, train_dir, config, options, verbose):
    """Runs model.fit from the current step to ``train_steps``; saves and previews at the end."""
    start = int(step.numpy())
    writer = tf.summary.create_file_writer(os.path.join(train_dir, LOGS_SUBDIR))
    previewer = _make_previewer(gan, real, train_dir, config, writer)
    try:
        with _StopSignals() as stop:
            callbacks = _callbacks(step, saver, previewer, writer, options)
            callbacks.append(StopOnRequest(lambda: stop.signum is not None))
            gan.fit(critic_batches(real, config.n_critic), callbacks=callbacks, shuffle=False,
                    verbose=verbose, **_epochs(start, options.train_steps))
            end = int(step.numpy())
            if previewer.last_step != end:
                previewer.write(end)
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


def _make_previewer(gan, real, train_dir, config, writer):
    """A Previewer with the run's preview z and, for comparison, a few real clips."""
    z = load_or_create_preview_z(train_dir, config.latent_dim, config.seed)
    sample = next(iter(real))
    return Previewer(gan.generator, z, train_dir, config.sample_rate, writer,
                     sample[:min(len(sample), len(z))].numpy())


def _callbacks(step, saver, previewer, writer, options):
    """The per-step callbacks, in the order :mod:`wavegan_tf.callbacks` requires."""
    return [
        NonFiniteLossCheck(step),
        StepCounter(step, options.train_steps),
        Throughput(),
        ScalarSummaries(writer, step),
        EveryNSteps(step, previewer.write, every=options.preview_every_steps),
        EveryNSteps(step, saver.save, every=options.save_every_steps,
                    every_secs=options.save_every_secs),
    ]


def _epochs(start, train_steps):
    """fit's epoch arguments for steps ``start + 1 .. train_steps``, in epochs of at most
    :data:`STEPS_PER_EPOCH` steps numbered so that the epoch count continues on resume."""
    remaining = train_steps - start
    epoch_steps = min(STEPS_PER_EPOCH, remaining)
    initial_epoch = start // epoch_steps
    return dict(steps_per_epoch=epoch_steps, initial_epoch=initial_epoch,
                epochs=initial_epoch + math.ceil(remaining / epoch_steps))


class _CheckpointSaver:
    """The run's CheckpointManager; saves only finite weights and at most once per step."""

    def __init__(self, gan, step, train_dir, keep):
        self.gan = gan
        self.checkpoint = checkpoints.make_checkpoint(gan, step)
        self.manager = tf.train.CheckpointManager(
            self.checkpoint, checkpoints.checkpoint_dir(train_dir), max_to_keep=keep,
            checkpoint_name=checkpoints.CHECKPOINT_PREFIX)
        self.last_step = None

    def restore(self):
        """Restores the newest checkpoint, if any (the state then continues from it)."""
        path = self.manager.latest_checkpoint
        if path:
            self.checkpoint.restore(path).assert_existing_objects_matched()
            self.last_step = int(self.checkpoint.step.numpy())
            logging.info("Resuming from %s (step %d).", path, self.last_step)

    def save(self, step):
        if step == self.last_step:
            return
        variables = self.gan.generator.variables + self.gan.discriminator.variables
        if not all(bool(keras.ops.all(keras.ops.isfinite(v))) for v in variables
                   if keras.backend.is_float_dtype(v.dtype)):
            raise TrainingDiverged(f"the weights hold NaN or infinite values at step {step}")
        self.manager.save(checkpoint_number=step)
        self.last_step = step

    def latest(self):
        return self.manager.latest_checkpoint

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
    from wavegan_tf.data import audio_dataset

    return audio_dataset(data_dir, slice_len=config.slice_len, sample_rate=config.sample_rate,
                         num_channels=config.num_channels, batch_size=config.batch_size,
                         seed=seed)


def _data_seed(seed, step):
    """Seed of the data stream for a run with ``seed`` starting at ``step``."""
    return int(np.random.SeedSequence([int(seed), int(step)]).generate_state(1)[0])


def _set_learning_rates(gan, config):
    """Applies the config's learning rates, which a restored checkpoint would otherwise set.

    A rate of 0 means the loss's default (:func:`wavegan_tf.losses.default_optimizers`).
    """
    default_g, default_d = losses.default_optimizers(config.loss)
    gan.g_optimizer.learning_rate = config.g_learning_rate or float(default_g.learning_rate)
    gan.d_optimizer.learning_rate = config.d_learning_rate or float(default_d.learning_rate)


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


def _log_run(train_dir, config, options, start):
    logging.info("Training directory: %s (%s from step %d to %d)", os.path.abspath(train_dir),
                 "resuming" if start else "starting", start, options.train_steps)
    logging.info("Data: %s", options.data_dir)
    logging.info("Checkpoints: %s, TensorBoard: %s, previews: %s",
                 checkpoints.checkpoint_dir(train_dir), os.path.join(train_dir, LOGS_SUBDIR),
                 os.path.join(train_dir, "previews"))
    logging.info("Config: %s", json.dumps(config.to_dict(), sort_keys=True))


def _export(train_dir):
    from wavegan_tf.export import export_generator

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


def _check_int(name, value, minimum):
    if isinstance(value, bool) or int(value) != value or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {name}={value!r}")
