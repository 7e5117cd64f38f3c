"""Whole runs: the training loop (:mod:`wavegan_tf.training.loop`) given what the stages above
it add. :func:`train` is ``train.py``'s run, scored while it trains (:mod:`wavegan_tf.eval`) and
exported at its end (:mod:`wavegan_tf.serving`); :func:`train_curve` is a learning curve of the
quality benchmark, on the same loop.
"""

import tempfile

from absl import logging

from wavegan_tf.eval.during_training import PeriodicEvaluation
from wavegan_tf.eval.learning_curve import CurveTracker
from wavegan_tf.eval.scoring import make_eval_fn
from wavegan_tf.serving.export import export_generator
from wavegan_tf.training import loop

# train_steps of a curve whose budget is in minutes only: more than any run reaches.
UNLIMITED_STEPS = 10 ** 9


def train(train_dir, config_values=None, option_values=None, verbose=1, strategy=None):
    """Trains (or resumes) the run in ``train_dir``.

    The directory holds everything the run needs: ``config.json`` (the GANConfig) and
    ``training.json`` (the TrainingOptions), ``checkpoints/``, TensorBoard ``logs/``, the
    preview z and ``previews/step_<N>.wav``, SpecGAN's ``spectrogram_moments.json``, with
    ``eval_every_steps`` the scores (``eval.jsonl``) and the best G (``best/``), and at the end
    the exported G (``export/``). Calling it again on the same directory resumes from the
    newest checkpoint that reads back completely; only the values passed explicitly change the
    saved settings, and those that shape the weights, the optimizer state or the seed cannot.

    Args:
        train_dir: the training directory; created if missing.
        config_values: GANConfig fields to set (see
            :func:`wavegan_tf.training.settings.resolve_run` for resume).
        option_values: TrainingOptions fields to set.
        verbose: ``model.fit`` verbosity (1: progress bar with losses and it/s).
        strategy: a ``tf.distribute.Strategy`` to train under instead of the one the options
            name (e.g. a MirroredStrategy over chosen devices).

    Under a strategy with several workers (multi_worker) every worker calls this with the same
    ``train_dir`` on shared storage; only the chief (:func:`wavegan_tf.training.distribute.
    is_chief`) locks the directory and writes the settings, logs, previews, checkpoints and
    export, and checkpoints are saved by step count only (``save_every_secs`` is ignored).

    Returns:
        A :class:`wavegan_tf.training.loop.TrainingResult`.

    Raises:
        ValueError: a bad or conflicting setting, or unusable data (from the data module).
        FileNotFoundError: ``data_dir`` does not exist.
        OSError: ``train_dir`` cannot be written.
        wavegan_tf.files.locks.TrainDirInUse: (an OSError) another live trainer holds
            ``train_dir``.
        wavegan_tf.training.checkpoints.CheckpointSaveError: (an OSError) a checkpoint or
            preview could not be written; the newest complete checkpoint stays loadable.
        wavegan_tf.training.checkpoints.CorruptCheckpointError: (a ValueError) every checkpoint
            in ``train_dir`` is damaged.
        wavegan_tf.training.callbacks.TrainingDiverged: a loss became NaN/inf; the newest
            checkpoint is the last good one.
    """
    return loop.train(train_dir, config_values, option_values, verbose=verbose,
                      strategy=strategy, evaluation=periodic_evaluation, export=export_run)


def periodic_evaluation(run):
    """The ``eval_every_steps`` scorer of ``run`` (a RunContext): a :class:`~wavegan_tf.eval.
    during_training.PeriodicEvaluation` with the run's classifier, loaded once here."""
    options, config = run.options, run.config
    eval_fn = make_eval_fn(options.eval_classifier, n=options.eval_n, seed=config.seed,
                           splits=min(10, options.eval_n), sample_rate=config.sample_rate,
                           class_names=config.class_names)
    return PeriodicEvaluation(eval_fn, run.audio_generator, config, run.train_dir, run.writer)


def export_run(train_dir):
    """Exports G of the newest checkpoint to ``train_dir/export``; returns that folder."""
    export_dir = export_generator(train_dir)
    logging.info("Exported the generator to %s", export_dir)
    return export_dir


def train_curve(config, data_dir, budget, eval_every, scorer, report=None, export_dir=None):
    """Trains ``config`` (a GANConfig) on ``data_dir`` within ``budget`` (a
    :class:`~wavegan_tf.eval.learning_curve.Budget`); returns the curve of a
    :class:`~wavegan_tf.eval.learning_curve.CurveTracker`: one dict per evaluation with
    ``step``, ``minutes``, the mean losses since the previous point and the scores of
    ``scorer(G)``, G being the one to listen to (the weight average when there is one, for
    SpecGAN followed by Griffin-Lim with the data's spectrogram moments).

    The run goes to a temporary training directory, saved only at its end. ``report(point)``
    is called with each point as it is measured. With ``export_dir`` the final G is exported
    there (a previous folder there is replaced once the new one is written).
    """
    tracker = CurveTracker(budget, eval_every, scorer, report)
    options = dict(data_dir=data_dir, train_steps=budget.steps or UNLIMITED_STEPS,
                   save_every_steps=0, save_every_secs=0.0, preview_every_steps=0,
                   keep_checkpoints=1, export=export_dir is not None)
    with tempfile.TemporaryDirectory(prefix="wavegan-curve-") as train_dir:
        loop.train(train_dir, config.to_dict(), options, verbose=0, callbacks=[tracker.for_run],
                   export=lambda run_dir: export_generator(run_dir, export_dir))
    return tracker.points
