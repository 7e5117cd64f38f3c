"""The training loop: ``model.fit`` of a GANTrainer from a run's step to ``train_steps``, with
its checkpoints, previews, TensorBoard logs and stop signals kept in the training directory.

What happens beside the steps and belongs to later stages is given to :func:`train` by its
caller: the periodic evaluation (``evaluation``), more per-step callbacks (``callbacks``) and the
export at the end (``export``). :func:`wavegan_tf.runs.train` gives those of ``train.py``.
"""

import contextlib
import dataclasses
import json
import math
import os
import signal

import keras
import soundfile
import tensorflow as tf
from absl import logging

from wavegan_tf.cpu import conv_tuning, polyphase_conv
from wavegan_tf.cpu.bfloat16_support import warn_if_emulated
from wavegan_tf.cpu.dtype_policy import global_dtype_policy
from wavegan_tf.files.atomic_files import remove_temp_files
from wavegan_tf.files.directories import ensure_writable_dir
from wavegan_tf.files.locks import RunLock
from wavegan_tf.training import checkpoints, inputs, losses
from wavegan_tf.training.callbacks import (
    EveryNSteps,
    NonFiniteLossCheck,
    ScalarSummaries,
    StepCounter,
    StopOnRequest,
    Throughput,
    TrainingDiverged,
)
from wavegan_tf.training.config import GANConfig
from wavegan_tf.training.distribute import is_chief
from wavegan_tf.training.previews import (
    PREVIEWS_SUBDIR,
    Previewer,
    load_or_create_preview_z,
    preview_path,
)
from wavegan_tf.training.saver import CheckpointSaver, StopSignals
from wavegan_tf.training.settings import (
    TrainingOptions,
    default_data_dir,
    dtype_policy_name,
    resolve_run,
)

LOGS_SUBDIR = "logs"
# Generator steps per Keras epoch: the length of one progress-bar line.
STEPS_PER_EPOCH = 100


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


@dataclasses.dataclass(frozen=True)
class RunContext:
    """What the hooks of :func:`train` are given of a run about to fit.

    Attributes:
        train_dir: the training directory.
        config: the run's GANConfig (with its class names, for a conditional run).
        options: the run's TrainingOptions.
        gan: the GANTrainer being fit.
        step: the run's step variable (completed generator steps, updated after each step).
        audio_generator: the G to listen to, as a model from z to audio: the weight average
            when there is one, for SpecGAN followed by Griffin-Lim.
        writer: the run's ``tf.summary`` writer (a no-op one off the chief).
    """

    train_dir: str
    config: GANConfig
    options: TrainingOptions
    gan: keras.Model
    step: tf.Variable
    audio_generator: keras.Model
    writer: object


@dataclasses.dataclass
class _Run:
    """What the stages of :func:`train` share: the settings, where the run executes and the
    hooks it was given."""

    train_dir: str
    config: GANConfig
    options: TrainingOptions
    strategy: tf.distribute.Strategy
    chief: bool
    evaluation: object = None
    export: object = None
    callbacks: tuple = ()
    # SpecGAN's spectrogram moments (None for WaveGAN).
    moments: object = None

    @property
    def multi_worker(self):
        """True under MultiWorkerMirroredStrategy, whose workers must save together."""
        return isinstance(self.strategy, tf.distribute.MultiWorkerMirroredStrategy)


def train(train_dir, config_values=None, option_values=None, verbose=1, strategy=None, *,
          evaluation=None, export=None, callbacks=()):
    """Trains (or resumes) the run in ``train_dir``; :func:`wavegan_tf.runs.train` documents
    the run, its arguments, result and errors. The hooks, given by the caller:

    Args:
        evaluation: ``evaluation(run: RunContext) -> score(step)``, called once before the
            first step; ``score`` is then called every ``eval_every_steps`` steps. Needed
            when the options set ``eval_every_steps``.
        export: ``export(train_dir) -> export_dir``, called on the chief once the run reached
            its end (not when a signal stopped it) with a checkpoint saved. Needed when the
            options set ``export``.
        callbacks: ``make(run: RunContext) -> keras.callbacks.Callback`` each, called once
            before the first step; the callbacks run after each step's evaluation and before
            its checkpoint, and may end the run early (``model.stop_training``), which then
            saves, previews and exports as at ``train_steps``.
    """
    config, options = resolve_run(train_dir, config_values, option_values)
    if options.eval_every_steps and evaluation is None:
        raise ValueError("eval_every_steps is set but no evaluation was given to the training "
                         "loop: train with wavegan_tf.train, which scores G")
    if options.export and export is None:
        raise ValueError("export is set but no export was given to the training loop: train "
                         "with wavegan_tf.train, or set export=False")
    strategy = strategy or inputs.start_strategy(options)
    inputs.check_micro_batches(config, options, strategy)
    chief = is_chief(strategy)
    if chief:
        ensure_writable_dir(train_dir, role="train_dir")
    run = _Run(train_dir, config, options, strategy, chief, evaluation, export, tuple(callbacks))
    with RunLock(train_dir) if chief else contextlib.nullcontext(), \
            global_dtype_policy(dtype_policy_name(options.mixed_precision)):
        return _train_locked(run, verbose)


def _train_locked(run, verbose):
    """:func:`train` once this process owns ``train_dir`` (or is a non-chief worker)."""
    if run.chief:
        _remove_temp_files(run.train_dir)
    data_dir = run.options.data_dir or default_data_dir()
    run.options = dataclasses.replace(run.options, data_dir=os.path.abspath(data_dir))
    if run.config.conditional:
        run.config = inputs.with_class_names(run.config, run.options.data_dir)
    config, options = run.config, run.options
    keras.utils.set_random_seed(config.seed)
    with run.strategy.scope():
        gan = config.build_gan(jit_compile=options.jit_compile,
                               micro_batches=options.micro_batches)
    step = tf.Variable(0, dtype=tf.int64, name="step")
    saver = CheckpointSaver(gan, step, run.train_dir, run.strategy, options.keep_checkpoints,
                            run.chief)
    saver.restore()
    _set_learning_rates(gan, config)
    start = int(step.numpy())
    if config.model == "specgan":
        run.moments = inputs.spectrogram_moments(run.train_dir, config, options.data_dir,
                                                 resuming=saver.resume_from is not None,
                                                 chief=run.chief)
    data = None
    if start < options.train_steps:
        data = inputs.training_data(config, options.data_dir,
                                    inputs.data_seed(config.seed, start), run.strategy,
                                    run.moments, run.chief)
    # Written only once the data has loaded: a run that fails before (a mistyped data_dir)
    # leaves no settings behind that would pin the corrected run to its flags.
    if run.chief:
        config.save(run.train_dir)
        options.save(run.train_dir)
    _log_run(run, start)
    result = TrainingResult(start_step=start, step=start, checkpoint=saver.latest())
    if data is not None:
        with _conv_plan(gan, run):
            result = _fit(gan, step, saver, run, data, verbose)
    else:
        logging.info("Step %d already reaches train_steps=%d: nothing to train.", start,
                     options.train_steps)
    if options.export and run.chief and result.interrupted_by is None and result.checkpoint:
        result.export_dir = run.export(run.train_dir)
    return result


def _conv_plan(gan, run):
    """The convolution formulation the run's steps are traced under (its ``conv_plan``
    option). "tuned" is the rule where tuning cannot apply: under XLA, or with a GPU or TPU
    (which keep TensorFlow's convolutions)."""
    plan = run.options.conv_plan
    if plan == "tuned" and (run.options.jit_compile or polyphase_conv.accelerator_present()):
        logging.info("Convolution plan: the rule (auto), as tuning does not apply %s.",
                     "under XLA" if run.options.jit_compile else "on a GPU or TPU")
        plan = "auto"
    if plan == "tuned":
        _tune_convs(gan, run)
    return polyphase_conv.conv_formulation(plan)


def _tune_convs(gan, run):
    """Tunes G's and D's layer shapes at each replica's batch and micro-batch (read from the
    machine's plan cache when timed before) for the "tuned" formulation: with micro-batches,
    the critic update generates its clips for the whole replica batch before splitting it."""
    replica_batch = run.config.batch_size // run.strategy.num_replicas_in_sync
    batches = sorted({replica_batch, replica_batch // run.options.micro_batches})
    models = (gan.generator, gan.discriminator)
    plans = conv_tuning.tune([shape for batch in batches
                              for shape in conv_tuning.model_shapes(models, batch)])
    conv_tuning.adopt(plans)
    if plans:
        matmuls = sum(sum(plan) for plan, _ in plans.values())
        logging.info("Convolution plan: tuned on this machine, %d of the %d products of %d "
                     "layer shape(s) as matmuls (cache %s).", matmuls, 3 * len(plans),
                     len(plans), conv_tuning.cache_path())


def _fit(gan, step, saver, run, data, verbose):
    """Runs model.fit over ``data`` (from :func:`wavegan_tf.training.inputs.training_data`)
    from the current step to ``train_steps``; saves and previews at the end."""
    start = int(step.numpy())
    real, sample = data
    writer = (tf.summary.create_file_writer(os.path.join(run.train_dir, LOGS_SUBDIR))
              if run.chief else tf.summary.create_noop_writer())
    context = RunContext(run.train_dir, run.config, run.options, gan, step,
                         run.config.build_audio_generator(gan.sampling_generator, run.moments),
                         writer)
    previewer = _make_previewer(context, sample) if run.chief else None
    try:
        with StopSignals() as stop:
            callbacks = _callbacks(context, saver, previewer, run)
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


def _callbacks(context, saver, previewer, run):
    """The per-step callbacks, in the order :mod:`wavegan_tf.training.callbacks` requires."""
    step, options = context.step, context.options
    callbacks = [
        NonFiniteLossCheck(step),
        StepCounter(step, options.train_steps),
        Throughput(),
        ScalarSummaries(context.writer, step),
    ]
    if previewer is not None:
        callbacks.append(EveryNSteps(step, lambda at: _write_preview(previewer, saver, at),
                                     every=options.preview_every_steps))
    if options.eval_every_steps:
        callbacks.append(EveryNSteps(step, run.evaluation(context),
                                     every=options.eval_every_steps))
    callbacks += [make(context) for make in run.callbacks]
    # Workers of a multi-worker run save together, so only at the same step counts.
    every_secs = 0.0 if run.multi_worker else options.save_every_secs
    callbacks.append(EveryNSteps(step, saver.save, every=options.save_every_steps,
                                 every_secs=every_secs))
    return callbacks


def _make_previewer(context, sample):
    """A Previewer with the run's preview z and, for comparison, a few real clips."""
    config = context.config
    z = load_or_create_preview_z(context.train_dir, config.latent_dim, config.seed)
    return Previewer(context.audio_generator, z, context.train_dir, config.sample_rate,
                     context.writer, sample[:min(len(sample), len(z))],
                     class_names=config.class_names)


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


def _set_learning_rates(gan, config):
    """Applies the config's learning rates, which a restored checkpoint would otherwise set.

    A rate of 0 means the loss's default (:func:`wavegan_tf.training.losses.default_optimizers`).
    """
    default_g, default_d = losses.default_optimizers(config.loss)
    gan.g_optimizer.learning_rate = config.g_learning_rate or float(default_g.learning_rate)
    gan.d_optimizer.learning_rate = config.d_learning_rate or float(default_d.learning_rate)


def _remove_temp_files(train_dir):
    """Deletes temporary files that interrupted writes left in ``train_dir`` and its previews."""
    removed = []
    for directory in (train_dir, os.path.join(train_dir, PREVIEWS_SUBDIR)):
        if os.path.isdir(directory):
            removed += remove_temp_files(directory)
    if removed:
        logging.info("Removed %d temporary file(s) left by an interrupted run: %s",
                     len(removed), ", ".join(removed))


def _log_run(run, start):
    train_dir, config, options = run.train_dir, run.config, run.options
    logging.info("Training directory: %s (%s from step %d to %d)", os.path.abspath(train_dir),
                 "resuming" if start else "starting", start, options.train_steps)
    logging.info("Data: %s", options.data_dir)
    logging.info("Checkpoints: %s, TensorBoard: %s, previews: %s",
                 checkpoints.checkpoint_dir(train_dir), os.path.join(train_dir, LOGS_SUBDIR),
                 os.path.join(train_dir, PREVIEWS_SUBDIR))
    logging.info("Config: %s", json.dumps(config.to_dict(), sort_keys=True))
    logging.info("Strategy: %s (%d replica(s)%s), precision: %s, XLA: %s, micro-batches: %d",
                 options.strategy, run.strategy.num_replicas_in_sync,
                 "" if run.chief else ", not the chief", options.mixed_precision,
                 "on" if options.jit_compile else "off", options.micro_batches)
    if options.mixed_precision == "mixed_bfloat16":
        warn_if_emulated("mixed_bfloat16 training")
