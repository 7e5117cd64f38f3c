"""Scoring a run while it trains, and keeping the generator that scored best.

:class:`PeriodicEvaluation` is what ``train.py --eval_every_steps N --eval_classifier PATH``
runs every N steps: it scores G on fixed z with :func:`wavegan_tf.eval.make_eval_fn`, writes the
scores to TensorBoard under ``eval/`` and appends them to ``TRAIN_DIR/eval.jsonl``, and when the
inception score beats every earlier one it exports that generator to ``TRAIN_DIR/best/`` (a
SavedModel with the same contract as ``export/``, so ``generate.py --model TRAIN_DIR/best``
works) and records its step and scores in ``TRAIN_DIR/best.json``. This is the original code's
"incept" mode. A resumed run reads ``best.json`` and only replaces the best export with a better
one.
"""

import json
import math
import os

import tensorflow as tf
from absl import logging

from wavegan_tf.cpu.dtype_policy import global_dtype_policy
from wavegan_tf.files.atomic_files import atomic_output_dir, atomic_output_file

EVAL_LOG_FILENAME = "eval.jsonl"
BEST_FILENAME = "best.json"
BEST_SUBDIR = "best"
SCORE_KEY = "inception_score"


def best_record(train_dir):
    """The parsed ``best.json`` of ``train_dir`` (step and scores of the best export), or None."""
    path = os.path.join(train_dir, BEST_FILENAME)
    if not os.path.exists(path):
        return None
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (OSError, json.JSONDecodeError) as err:
        raise ValueError(f"cannot read {path!r} ({err}); delete it to start tracking the best "
                         "generator afresh") from err


class PeriodicEvaluation:
    """Scores G at a step, logs the scores and exports G when it is the best so far.

    Args:
        eval_fn: ``eval_fn(generator) -> dict`` with at least ``inception_score``
            (:func:`wavegan_tf.eval.make_eval_fn`).
        generator: the G to score and export, as a model from z to audio: the run's
            ``sampling_generator`` (its weight average when it has one), for SpecGAN followed
            by Griffin-Lim (:meth:`wavegan_tf.training.config.GANConfig.build_audio_generator`).
        config: the run's GANConfig (to build a float32 copy of G for the export).
        train_dir: where ``eval.jsonl``, ``best.json`` and ``best/`` are written.
        writer: the run's ``tf.summary`` writer.
    """

    def __init__(self, eval_fn, generator, config, train_dir, writer):
        self.eval_fn = eval_fn
        self.generator = generator
        self.config = config
        self.train_dir = train_dir
        self.writer = writer
        record = best_record(train_dir)
        self.best_score = record[SCORE_KEY] if record else -math.inf

    def __call__(self, step):
        """Scores G at ``step``; returns the scores (a dict with ``step`` and ``best``)."""
        scores = {key: _plain(value) for key, value in self.eval_fn(self.generator).items()}
        scores["step"] = int(step)
        scores["best"] = bool(scores[SCORE_KEY] > self.best_score)
        self._log(scores)
        if scores["best"]:
            self._export_best(scores)
        logging.info("Step %d: inception score %.3f +- %.3f%s", step, scores[SCORE_KEY],
                     scores.get("inception_score_std", 0.0),
                     " (best so far: exported to best/)" if scores["best"] else "")
        return scores

    def _log(self, scores):
        with self.writer.as_default():
            for key, value in scores.items():
                if key not in ("step", "best") and isinstance(value, float):
                    tf.summary.scalar(f"eval/{key}", value, step=scores["step"])
        self.writer.flush()
        path = os.path.join(self.train_dir, EVAL_LOG_FILENAME)
        with open(path, "a", encoding="utf-8") as f:
            f.write(json.dumps(scores, sort_keys=True) + "\n")

    def _export_best(self, scores):
        """Exports a float32 copy of G to ``best/`` (atomically), then writes ``best.json``."""
        from wavegan_tf.serving.export import write_export

        with global_dtype_policy("float32"):
            generator = self.config.build_audio_generator()
        generator.set_weights(self.generator.get_weights())
        with atomic_output_dir(os.path.join(self.train_dir, BEST_SUBDIR)) as tmp:
            write_export(generator, self.config, scores["step"], tmp)
        with atomic_output_file(os.path.join(self.train_dir, BEST_FILENAME)) as tmp:
            with open(tmp, "w", encoding="utf-8") as f:
                json.dump(scores, f, indent=2, sort_keys=True)
                f.write("\n")
        self.best_score = scores[SCORE_KEY]


def _plain(value):
    """A JSON-friendly Python number for numpy scalars; other values unchanged."""
    if hasattr(value, "item"):
        value = value.item()
    return float(value) if isinstance(value, float) else value
