"""Keras callbacks that run a WaveGAN training job around ``model.fit``.

Each does one thing at the end of every generator step (one ``train_step``). The training loop
(:mod:`wavegan_tf.training.loop`) lists them in this order, which matters:

1. :class:`NonFiniteLossCheck` raises :class:`TrainingDiverged` before anything else sees the
   step, so a diverged state is never counted, logged or saved;
2. :class:`StepCounter` advances the run's step variable and stops at the last step;
3. :class:`Throughput` adds ``it/s`` to the logs shown by the progress bar;
4. :class:`ScalarSummaries` writes this step's losses to TensorBoard;
5. :class:`EveryNSteps` callbacks write previews and run the evaluation, then come the
   callbacks the loop was given, then the checkpoints (:class:`EveryNSteps` again);
6. :class:`StopOnRequest` ends training after this step when a signal asked for it.
"""

import math
import time

import keras
import tensorflow as tf


class TrainingDiverged(RuntimeError):
    """A loss became NaN or infinite; training stopped without saving that state."""


class NonFiniteLossCheck(keras.callbacks.Callback):
    """Raises :class:`TrainingDiverged` when any logged loss of a step is NaN or infinite.

    ``step`` is the run's step variable; the message names the step that failed (one past it).
    """

    def __init__(self, step):
        super().__init__()
        self.step = step

    def on_train_batch_end(self, batch, logs=None):
        for name, value in (logs or {}).items():
            value = float(value)
            if not math.isfinite(value):
                raise TrainingDiverged(
                    f"{name} is {value} at step {int(self.step.numpy()) + 1}")


class StepCounter(keras.callbacks.Callback):
    """Counts completed generator steps in ``step`` and stops fit when it reaches ``last_step``."""

    def __init__(self, step, last_step):
        super().__init__()
        self.step = step
        self.last_step = int(last_step)

    def on_train_batch_end(self, batch, logs=None):
        self.step.assign_add(1)
        if int(self.step.numpy()) >= self.last_step:
            self.model.stop_training = True


class Throughput(keras.callbacks.Callback):
    """Adds ``it/s`` (generator steps per second) to the logs, so the progress bar shows it.

    The rate is measured from the end of an epoch's first step, which excludes the one-time
    graph tracing of the first epoch; within the first step it is that step's own rate.
    """

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch_start = time.perf_counter()
        self._first_end = None

    def on_train_batch_end(self, batch, logs=None):
        now = time.perf_counter()
        if logs is None:
            return
        if self._first_end is None:
            self._first_end = now
            logs["it/s"] = 1.0 / max(now - self._epoch_start, 1e-9)
        else:
            logs["it/s"] = batch / max(now - self._first_end, 1e-9)


class MetricSteps:
    """What each step adds to the trainer's metrics.

    The trainer's metrics are means over the epoch so far (that is what the progress bar shows);
    one step's share is the change in each metric's running total and count since the previous
    step, e.g. ``d_loss`` over that step's critic updates. Call :meth:`reset` when the metrics
    are (at the start of every epoch).
    """

    def __init__(self):
        self._previous = {}

    def reset(self):
        self._previous = {}

    def changes(self, metrics):
        """``{name: (total added, count added)}`` of the ``metrics`` this step updated."""
        changes = {}
        for metric in metrics:
            total, count = float(metric.total.numpy()), float(metric.count.numpy())
            old_total, old_count = self._previous.get(metric.name, (0.0, 0.0))
            self._previous[metric.name] = (total, count)
            if count > old_count:
                changes[metric.name] = (total - old_total, count - old_count)
        return changes


class ScalarSummaries(keras.callbacks.Callback):
    """Writes each metric's value for this step alone (:class:`MetricSteps`) to TensorBoard,
    tagged by the step."""

    def __init__(self, writer, step):
        super().__init__()
        self.writer = writer
        self.step = step
        self._steps = MetricSteps()

    def on_epoch_begin(self, epoch, logs=None):
        self._steps.reset()

    def on_train_batch_end(self, batch, logs=None):
        step = int(self.step.numpy())
        with self.writer.as_default():
            for name, (total, count) in self._steps.changes(self.model.metrics).items():
                tf.summary.scalar(name, total / count, step=step)


class EveryNSteps(keras.callbacks.Callback):
    """Calls ``action(step)`` after every step that is a multiple of ``every`` (0 = never).

    With ``every_secs`` > 0 it also calls it after the first step that ends ``every_secs``
    seconds or more after the previous call (or the start of training).
    """

    def __init__(self, step, action, every=0, every_secs=0.0):
        super().__init__()
        self.step = step
        self.action = action
        self.every = int(every)
        self.every_secs = float(every_secs)
        self._last_time = time.monotonic()

    def on_train_begin(self, logs=None):
        self._last_time = time.monotonic()

    def on_train_batch_end(self, batch, logs=None):
        step = int(self.step.numpy())
        due_by_step = self.every > 0 and step % self.every == 0
        due_by_time = self.every_secs > 0 and time.monotonic() - self._last_time >= \
            self.every_secs
        if due_by_step or due_by_time:
            self.action(step)
            self._last_time = time.monotonic()


class StopOnRequest(keras.callbacks.Callback):
    """Ends fit after the current step once ``requested()`` returns true (e.g. after SIGINT)."""

    def __init__(self, requested):
        super().__init__()
        self.requested = requested

    def on_train_batch_end(self, batch, logs=None):
        if self.requested():
            self.model.stop_training = True
