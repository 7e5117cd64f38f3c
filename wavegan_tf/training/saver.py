"""Keeping a run: its checkpoint saver and the signals that ask it to stop.

A save that cannot be written stops the run (CheckpointSaveError), and weights that are not
finite are never saved (TrainingDiverged), so the newest checkpoint is always the last good one.
SIGINT and SIGTERM let the current step finish, so the run can save before it returns.
"""

import contextlib
import signal

import keras
import tensorflow as tf
from absl import logging

from wavegan_tf.training import checkpoints
from wavegan_tf.training.callbacks import TrainingDiverged
from wavegan_tf.training.distribute import ChiefCheckpointManager


class CheckpointSaver:
    """The run's checkpoints; saves only finite weights and at most once per step.

    On the chief, creation prepares the checkpoint folder for resuming
    (:func:`wavegan_tf.training.checkpoints.prepare_resume`), so the caller must own the training
    directory; other workers of a multi-worker run only read it. Saving goes through a
    :class:`~wavegan_tf.training.distribute.ChiefCheckpointManager`: every worker calls
    :meth:`save`, only the chief's files are kept.

    Args:
        gan: the GANTrainer whose G, D, optimizers (and G's average) are saved.
        step: the run's step variable, saved with them.
        train_dir: the training directory (checkpoints go to its ``checkpoints/``).
        strategy: the run's ``tf.distribute`` strategy.
        keep: newest checkpoints kept on disk.
        chief: whether this process is the chief worker.
    """

    def __init__(self, gan, step, train_dir, strategy, keep, chief):
        self.gan = gan
        self.directory = checkpoints.checkpoint_dir(train_dir)
        self.checkpoint = checkpoints.make_checkpoint(gan, step)
        if chief:
            self.resume_from = checkpoints.prepare_resume(train_dir)
        else:
            self.resume_from = checkpoints.usable_checkpoint(train_dir)[0]
        self.manager = ChiefCheckpointManager(self.checkpoint, self.directory, strategy,
                                              max_to_keep=keep,
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
                f"({error_reason(err)}). Training stopped; the newest complete checkpoint is "
                f"{self.describe_latest()}. Free disk space (or fix the folder's permissions) "
                "and run the same command again to resume.") from err
        self.last_step = step
        self.last_path = path or self.manager.latest_checkpoint
        logging.info("Saved checkpoint %s (step %d).", self.last_path, step)

    def latest(self):
        """The path prefix of the newest checkpoint (None before the first one)."""
        return self.last_path

    def describe_latest(self):
        """The newest checkpoint for an error message: its step and path, or that there is
        none."""
        path = self.latest()
        return f"step {self.last_step} ({path})" if path else "none (nothing was saved yet)"


class StopSignals:
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


def error_reason(err):
    """The short reason of an OSError or a TF error, e.g. "No space left on device"."""
    if isinstance(err, tf.errors.OpError):
        return err.message.strip().splitlines()[0]
    return err.strerror or str(err)
