"""Evaluation of WaveGAN samples: a log-mel audio classifier and the paper's scores.

* :mod:`~wavegan_tf.eval.features`: the log-mel front end (a Keras layer) and clip fitting.
* :mod:`~wavegan_tf.eval.classifier`: build, train, save and load the classifier.
* :mod:`~wavegan_tf.eval.metrics`: inception score, FID, nearest-neighbour distances, NDB.
* :mod:`~wavegan_tf.eval.scoring`: the report of ``evaluate.py score`` and a training hook.
* :mod:`~wavegan_tf.eval.audio_stats`: model-free statistics for unlabelled audio.
* :mod:`~wavegan_tf.eval.learning_curve`: scores against steps and minutes, for
  ``bench/quality.py``.
"""

from wavegan_tf.eval.classifier import (
                                        AudioClassifier,
                                        build_classifier,
                                        load_classifier,
                                        save_classifier,
                                        train_classifier,
)
from wavegan_tf.eval.features import LogMelSpectrogram
from wavegan_tf.eval.metrics import (
                                        frechet_distance,
                                        inception_score,
                                        mean_nearest_neighbour_distance,
                                        nearest_neighbour_distances,
                                        number_of_different_bins,
)
from wavegan_tf.eval.scoring import make_eval_fn, score

__all__ = [
    "AudioClassifier",
    "LogMelSpectrogram",
    "build_classifier",
    "frechet_distance",
    "inception_score",
    "load_classifier",
    "make_eval_fn",
    "mean_nearest_neighbour_distance",
    "nearest_neighbour_distances",
    "number_of_different_bins",
    "save_classifier",
    "score",
    "train_classifier",
]
