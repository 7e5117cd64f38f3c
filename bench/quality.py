"""Benchmark: sound quality against training steps and minutes, for variants side by side.

Trains each variant (``--variants``; ``baseline`` is the paper's WaveGAN, ``ema`` adds
``--ema_decay``, ``augment`` adds ``--augment``, ``ema+augment`` both, ``specgan`` is the paper's
SpecGAN, scored through Griffin-Lim, ``d32``/``b8`` set the model dim/batch size, and all of
them combine the same way, e.g. ``specgan+ema+d32``) from the same seed, on the
same data in the same order, for the same budget (``--steps`` and/or ``--minutes`` of training;
scoring does not count), and scores G every ``--eval_every`` steps and before the first step
with the project's evaluation (wavegan_tf.eval.learning_curve): inception score, FID, |D|self,
|D|train, NDB/K and the classes present among the clips (and label accuracy with
``--conditional``), all against a classifier trained once on the data and cached at
``--classifier``; and, for every folder, the model-free statistics of wavegan_tf.eval.
audio_stats (share of near-silent 16 ms frames, spread of spectral centroids). A folder without
class subfolders gets the statistics alone.

Default data: the spoken-digit recipe in data/spoken_digits (built with espeak-ng if missing);
the GAN trains on its train/ split, the held-out real clips are its test/ split.

Writes OUT_DIR/quality.json (settings, real-clip scores, every curve; rewritten after every
point, with ``"complete": false`` until the run ends), OUT_DIR/quality.png (the inception score,
or without labels the silent-frame share, against steps and against minutes, with the real
clips' value as a dashed ceiling) and each variant's final G as an export in
OUT_DIR/generators/<variant> (for generate.py --model, bench/spectrogram_sheet.py --models).
The last line holds ``name=value`` pairs: ``<variant>_is``, ``<variant>_fid``, ... for every
variant at its last evaluation, then, unprefixed, those of the best variant (the highest last
inception score, or without labels the silent-frame share closest to the real one): ``best``,
``is``, ``is_real``, ``is_ratio``, ``fid``, ``steps``, ``minutes``, ``silent_share``,
``silent_share_real``, ``centroid_spread``, ``centroid_spread_real``, and ``peak_gflops``, the
fp32 matmul peak of the machine.

    python bench/quality.py --minutes 8 --model_dim 16 --batch_size 16 --eval_every 150 \\
        --variants baseline,augment,specgan,specgan+ema
    python bench/quality.py --model_dim 8 --batch_size 8 --steps 60 --eval_every 20 \\
        --eval_n 100 --classifier_epochs 5
    python bench/quality.py --data_dir data/demo_drums --variants baseline,augment --steps 500
"""

import json
import os
import sys

from absl import app, flags

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FLAGS = flags.FLAGS
flags.DEFINE_string("data_dir", None, "Training audio: a labelled folder (DIR/<class>/ or "
                    "DIR/{train,valid,test}/<class>/) or any folder of audio. Default: the "
                    "spoken-digit recipe in data/spoken_digits, built if missing.")
flags.DEFINE_string("out_dir", os.path.join("runs", "quality"),
                    "Where quality.json, quality.png and the default classifier go.")
flags.DEFINE_list("variants", ["baseline", "ema", "augment"],
                  "Variants to compare: baseline, ema, augment, specgan, d<model dim>, "
                  "b<batch size> (overriding --model_dim, --batch_size), or parts joined by "
                  "'+' (e.g. specgan+ema, specgan+d32).")
flags.DEFINE_integer("steps", 0, "Generator steps per variant (0 = no step limit).")
flags.DEFINE_float("minutes", 30.0, "Minutes of training per variant (0 = no time limit); "
                   "with --steps too, whichever is reached first ends the variant.")
flags.DEFINE_integer("eval_every", 500, "Score G every this many steps.")
flags.DEFINE_integer("eval_n", 500, "Clips generated (from fixed z) per score.")
flags.DEFINE_integer("model_dim", 64, "Width multiplier d of G and D (as train.py).")
flags.DEFINE_integer("batch_size", 64, "Clips per batch (as train.py).")
flags.DEFINE_integer("seed", 0, "Seed of every variant's weights, z and data order.")
flags.DEFINE_boolean("conditional", False, "Class-conditional G and D (labelled data only); "
                     "adds label accuracy.")
flags.DEFINE_float("ema_decay", 0.999, "The decay of the 'ema' variant.")
flags.DEFINE_list("augment", ["gain", "shift", "mask"], "The policies of the 'augment' variant.")
flags.DEFINE_string("classifier", None, "The evaluation classifier (.keras); trained on the data "
                    "and saved there when missing. Default: OUT_DIR/classifier.keras.")
flags.DEFINE_integer("classifier_epochs", 10, "Most epochs when training the classifier.")
flags.DEFINE_integer("classifier_filters", 32, "Filters per conv layer of a new classifier "
                     "(32 classify the spoken digits' test split fully in 3 minutes on 2 cores; "
                     "evaluate.py's 128 take about 3 minutes per epoch there).")

SPOKEN_DIGITS = os.path.join(REPO, "data", "spoken_digits")
REAL_CLIPS = 256
SUMMARY_KEYS = (("is", "inception_score"), ("fid", "fid"), ("ndb_over_k", "ndb_over_k"),
                ("classes", "classes_present"), ("label_accuracy", "label_accuracy"),
                ("silent_share", "silent_frame_share"), ("centroid_spread", "centroid_spread"),
                ("steps", "step"), ("minutes", "minutes"))


def prepare_data():
    """``(labelled folder or None, training folder, class names or None)``."""
    from wavegan_tf.eval.learning_curve import labelled_layout

    data_dir = FLAGS.data_dir
    if data_dir is None:
        from wavegan_tf.audio.spoken_digits import make_spoken_digits

        data_dir = make_spoken_digits(SPOKEN_DIGITS)
    if not os.path.isdir(data_dir):
        raise app.UsageError(f"--data_dir {data_dir!r} does not exist")
    train_dir, class_names = labelled_layout(data_dir)
    if FLAGS.conditional and class_names is None:
        raise app.UsageError(f"--conditional needs a labelled --data_dir (one subfolder per "
                             f"class); {data_dir!r} has none")
    return (data_dir if class_names else None), train_dir, class_names


def real_clips(config, train_dir):
    """The first ``REAL_CLIPS`` training clips, as the GAN sees them."""
    import numpy as np

    from wavegan_tf.audio.data import audio_dataset

    batches = audio_dataset(train_dir, slice_len=config.slice_len,
                            sample_rate=config.sample_rate, batch_size=config.batch_size,
                            seed=config.seed)
    count = -(-REAL_CLIPS // config.batch_size)
    return np.concatenate([b.numpy() for b in batches.take(count)])[:REAL_CLIPS]


def summary(scores, prefix=""):
    return {prefix + name: scores[key] for name, key in SUMMARY_KEYS if key in scores}


def plot(path, curves, real, metric, label):
    """Two panels, ``metric`` against steps and against minutes, one line per variant and
    the real clips' value dashed."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    figure, axes = pyplot.subplots(1, 2, figsize=(10, 4), sharey=True)
    for axis, x_key, x_label in ((axes[0], "step", "generator steps"),
                                 (axes[1], "minutes", "training minutes")):
        for name, points in curves.items():
            axis.plot([p[x_key] for p in points], [p[metric] for p in points], marker="o",
                      markersize=3, label=name)
        axis.axhline(real[metric], color="black", linestyle="--", label="real clips")
        axis.set_xlabel(x_label)
        axis.grid(alpha=0.3)
    axes[0].set_ylabel(label)
    axes[1].legend()
    figure.tight_layout()
    figure.savefig(path, dpi=80)
    pyplot.close(figure)


def record(json_path, report, name, point):
    """Prints a curve point and rewrites the JSON with it, so that an interrupted run keeps
    every point measured so far (``"complete": false`` until the end)."""
    print(f"{name} " + " ".join(f"{k}={v:.4g}" for k, v in sorted(point.items())), flush=True)
    report["curves"][name].append(point)
    write_json(json_path, report)


def write_json(path, report):
    from wavegan_tf.files.atomic_files import atomic_output_file

    with atomic_output_file(path) as tmp, open(tmp, "w", encoding="utf-8") as f:
        json.dump(report, f, indent=2, sort_keys=True)
        f.write("\n")


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    from flops import matmul_peak_gflops

    from wavegan_tf import runs
    from wavegan_tf.training.config import GANConfig
    from wavegan_tf.eval import learning_curve

    try:
        variants = learning_curve.variant_configs(FLAGS.variants, FLAGS.ema_decay, FLAGS.augment)
        budget = learning_curve.Budget(steps=FLAGS.steps, minutes=FLAGS.minutes)
        base = dict(model_dim=FLAGS.model_dim, batch_size=FLAGS.batch_size, seed=FLAGS.seed,
                    conditional=FLAGS.conditional)
        configs = {name: GANConfig.for_model(extra.pop("model", "wavegan"),
                                                 **{**base, **extra})
                   for name, extra in variants.items()}
    except ValueError as err:
        raise app.UsageError(str(err)) from None
    labelled_dir, train_dir, class_names = prepare_data()
    if FLAGS.conditional:
        configs = {name: GANConfig(**dict(c.to_dict(), class_names=class_names))
                   for name, c in configs.items()}
    os.makedirs(FLAGS.out_dir, exist_ok=True)
    classifier = None
    if labelled_dir is not None:
        classifier = learning_curve.ensure_classifier(
            FLAGS.classifier or os.path.join(FLAGS.out_dir, "classifier.keras"), labelled_dir,
            epochs=FLAGS.classifier_epochs, filters=FLAGS.classifier_filters,
            slice_len=configs[next(iter(configs))].slice_len,
            sample_rate=configs[next(iter(configs))].sample_rate, seed=FLAGS.seed)
    first = next(iter(configs.values()))
    scorer = learning_curve.CurveScorer(
        real_clips(first, train_dir), first.sample_rate, FLAGS.eval_n, FLAGS.seed, classifier,
        labelled_dir, class_names if FLAGS.conditional else None)
    real = scorer.real_scores()
    print("real " + " ".join(f"{k}={v:.4g}" for k, v in sorted(real.items())), flush=True)
    json_path = os.path.join(FLAGS.out_dir, "quality.json")
    png_path = os.path.join(FLAGS.out_dir, "quality.png")
    report = {
        "data_dir": os.path.abspath(labelled_dir or train_dir), "classifier": classifier,
        "budget": {"steps": budget.steps, "minutes": budget.minutes},
        "eval_every": FLAGS.eval_every, "eval_n": FLAGS.eval_n, "peak_gflops": None,
        "complete": False, "configs": {name: c.to_dict() for name, c in configs.items()},
        "real": real, "curves": {}}
    curves = report["curves"]
    for name, config in configs.items():
        curves[name] = []
        runs.train_curve(
            config, train_dir, budget, FLAGS.eval_every, scorer,
            report=lambda p, name=name: record(json_path, report, name, p),
            export_dir=os.path.join(FLAGS.out_dir, "generators", name))
    peak = matmul_peak_gflops(n=1024, repeats=10)
    labelled = classifier is not None
    metric, label = (("inception_score", "inception score") if labelled else
                     ("silent_frame_share", "share of near-silent 16 ms frames"))
    report.update(peak_gflops=peak, complete=True)
    write_json(json_path, report)
    plot(png_path, curves, real, metric, label)
    print(f"wrote {json_path} and {png_path}")
    print(" ".join(f"{k}={_format(v)}" for k, v in final_figures(curves, real, labelled, peak)
                   .items()))


def final_figures(curves, real, labelled, peak):
    """The last line's figures: every variant's last point, then the best variant's."""
    figures = {}
    for name, points in curves.items():
        figures.update(summary(points[-1], prefix=f"{_key(name)}_"))
    if labelled:
        best = max(curves, key=lambda n: curves[n][-1]["inception_score"])
    else:
        best = min(curves, key=lambda n: abs(curves[n][-1]["silent_frame_share"]
                                             - real["silent_frame_share"]))
    last = curves[best][-1]
    figures["best"] = best
    figures.update(summary(last))
    if labelled:
        figures.update(is_real=real["inception_score"],
                       is_ratio=last["inception_score"] / real["inception_score"])
    figures.update(silent_share_real=real["silent_frame_share"],
                   centroid_spread_real=real["centroid_spread"], peak_gflops=peak)
    return figures


def _key(variant):
    """A variant's name as a key of the last line (no '+', '=' or ',')."""
    return variant.replace("+", "_").replace("=", "-").replace(",", "-")


def _format(value):
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


if __name__ == "__main__":
    app.run(main)
