"""Trains the evaluation classifier and scores generated audio with it.

Installed as the command wavegan-evaluate; in a source checkout also python evaluate.py.
Two subcommands:

  python evaluate.py train_classifier --data_dir data/digits --out runs/digits_clf.keras
  python evaluate.py score --classifier runs/digits_clf.keras --generated runs/sc09 \
      --reference data/digits --json report.json

train_classifier reads a labelled folder (DIR/<class>/*.wav, or DIR/{train,valid,test}/<class>/)
and saves a .keras classifier with a PATH.json sidecar (class names, held-out accuracy).
score takes a training directory, its export/ or a folder of audio files as --generated and
reports the inception score, FID, |D|self, |D|train and NDB against --reference, next to the
same figures for held-out real clips. For a conditional generator (trained with --conditional)
it also reports the label accuracy: the share of clips, generated for each class in turn, that
the classifier assigns to the class asked for (classes matched by name).

Expected failures (missing files or folders, bad values) are printed as "error: ..." with exit
status 1.
"""

import sys

from absl import flags

from wavegan_tf.cli import run_program
from wavegan_tf.eval import classifier, labelled, metrics, scoring

COMMANDS = ("train_classifier", "score")
FLAGS = flags.FLAGS

# Both subcommands
flags.DEFINE_integer("seed", 0, "Seed of the held-out splits, the z of a generator, file "
                     "subsets, k-means and (train_classifier) the weight initialisation.")
flags.DEFINE_integer("batch_size", classifier.DEFAULT_BATCH_SIZE,
                     "Clips per batch through the classifier (training and scoring).")
# train_classifier
flags.DEFINE_string("data_dir", None, "train_classifier: labelled folder, DIR/<class>/*.wav or "
                    "DIR/{train,valid,test}/<class>/*.wav.")
flags.DEFINE_string("out", None, "train_classifier: where to save the classifier (a .keras path; "
                    "the class names go to PATH.json beside it).")
flags.DEFINE_integer("slice_len", classifier.DEFAULT_SLICE_LEN,
                     "train_classifier: samples per clip; clips are trimmed or zero-padded.")
flags.DEFINE_integer("sample_rate", classifier.DEFAULT_SAMPLE_RATE,
                     "train_classifier: audio is resampled to this rate.")
flags.DEFINE_integer("epochs", classifier.DEFAULT_EPOCHS, "train_classifier: most epochs.")
flags.DEFINE_integer("patience", classifier.DEFAULT_PATIENCE,
                     "train_classifier: stop after this many epochs without a better validation "
                     "accuracy (equal accuracy at a lower loss counts as better); the best "
                     "weights are kept.")
flags.DEFINE_float("learning_rate", classifier.DEFAULT_LEARNING_RATE,
                   "train_classifier: Adam learning rate.")
flags.DEFINE_integer("filters", classifier.DEFAULT_FILTERS,
                     "train_classifier: filters per conv layer (128 in the paper).")
flags.DEFINE_float("holdout_fraction", labelled.DEFAULT_HOLDOUT_FRACTION,
                   "train_classifier: share of each class held out for validation, and again "
                   "for the test, when the folder has no valid/ or test/ split.")
# score
flags.DEFINE_string("classifier", None, "score: a classifier saved by train_classifier.")
flags.DEFINE_string("generated", None, "score: a training directory, its export/ folder, or a "
                    "folder of audio files.")
flags.DEFINE_string("reference", None, "score: folder of real audio (with train/ and test/ "
                    "folders, train/ is the reference and test/ the held-out real set).")
flags.DEFINE_string("heldout", None, "score: folder of held-out real audio; default: test/ (or "
                    f"valid/) of --reference, else a seeded "
                    f"{scoring.DEFAULT_HELDOUT_FRACTION:.0%} of the reference files.")
flags.DEFINE_integer("n", scoring.PAPER_N, "score: clips to generate (from a folder: at most this "
                     "many files, a seeded subset). The paper used 50000; lower it on a CPU.")
flags.DEFINE_integer("splits", metrics.DEFAULT_SPLITS,
                     "score: the inception score is the mean +- std over this many splits.")
flags.DEFINE_integer("ndb_bins", metrics.DEFAULT_NDB_BINS,
                     "score: K, the k-means bins of the reference log-mel images for NDB.")
flags.DEFINE_integer("nn_samples", scoring.DEFAULT_NN_SAMPLES,
                     "score: clips used for |D|self and |D|train (the paper used 1000).")
flags.DEFINE_string("json", None, "score: also write the report as JSON to this path.")


def train_classifier_command():
    _require("train_classifier", "data_dir", "out")
    results = classifier.train_classifier(
        FLAGS.data_dir, FLAGS.out, slice_len=FLAGS.slice_len, sample_rate=FLAGS.sample_rate,
        epochs=FLAGS.epochs, batch_size=FLAGS.batch_size, patience=FLAGS.patience,
        learning_rate=FLAGS.learning_rate, filters=FLAGS.filters,
        holdout_fraction=FLAGS.holdout_fraction, seed=FLAGS.seed)
    print(f"saved {results['path']} ({len(results['class_names'])} classes: "
          f"{', '.join(results['class_names'])})")
    print(f"held-out accuracy {results['test_accuracy']:.4f} on {results['num_test']} clips "
          f"(validation {results['valid_accuracy']:.4f}; best epoch {results['best_epoch']} of "
          f"{results['epochs_run']})")
    print(f"inception score of real clips: test {results['test_inception_score']:.3f} +- "
          f"{results['test_inception_score_std']:.3f}, train "
          f"{results['train_inception_score']:.3f} +- {results['train_inception_score_std']:.3f}")
    return 0


def score_command():
    _require("score", "classifier", "generated", "reference")
    report = scoring.score(
        FLAGS.classifier, FLAGS.generated, FLAGS.reference, n=FLAGS.n, splits=FLAGS.splits,
        seed=FLAGS.seed, heldout_dir=FLAGS.heldout, ndb_bins=FLAGS.ndb_bins,
        nn_samples=FLAGS.nn_samples, batch_size=FLAGS.batch_size)
    print(scoring.format_table(report))
    if FLAGS.json:
        scoring.write_report(report, FLAGS.json)
        print(f"wrote {FLAGS.json}")
    return 0


def _require(command, *names):
    missing = [f"--{name}" for name in names if getattr(FLAGS, name) is None]
    if missing:
        raise ValueError(f"{command} needs {', '.join(missing)}")


def main(argv):
    if len(argv) != 2 or argv[1] not in COMMANDS:
        print(f"error: give one subcommand, {' or '.join(COMMANDS)} (got {argv[1:]}); see "
              "--help", file=sys.stderr)
        return 1
    command = train_classifier_command if argv[1] == "train_classifier" else score_command
    try:
        return command()
    except (OSError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1


def run():
    """Entry point of ``wavegan-evaluate`` and ``python evaluate.py``."""
    run_program(main, __name__)


if __name__ == "__main__":
    run()
