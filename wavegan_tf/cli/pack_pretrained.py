"""Packs a trained generator as a pretrained model of the package (wavegan_tf/pretrained/NAME/).

  python -m wavegan_tf.cli.pack_pretrained --model runs/digits/generators/fast \\
      --name digits --card card.json

--model is a training directory or an export; --card a JSON object of model-card fields
(description, data, licence, command, ...). With --quality_json (bench/quality.py's output whose
generators/VARIANT is the packed --model) the card also takes that variant's last scores, the
real clips' scores, its minutes and the machine's matmul peak. The card always gets the step,
family, size and the measured error of the float16 storage.
"""

import os
import sys

from absl import app, flags

from wavegan_tf.cli import run_program
from wavegan_tf.files.json_files import read_json
from wavegan_tf.serving import pretrained
from wavegan_tf.serving.export import load_keras_generator

FLAGS = flags.FLAGS
flags.DEFINE_string("model", None, "The training directory or export to pack.")
flags.DEFINE_string("name", None, "The pretrained model's name (pretrained:NAME).")
flags.DEFINE_string("card", None, "A JSON file of model-card fields.")
flags.DEFINE_string("quality_json", None, "bench/quality.py's quality.json of the run that "
                    "made --model (OUT_DIR/generators/VARIANT): its scores go into the card.")
flags.DEFINE_string("root", pretrained.PRETRAINED_DIR, "The folder of pretrained models.")
for _name in ("model", "name", "card"):
    flags.mark_flag_as_required(_name)


SCORE_KEYS = ("inception_score", "fid", "classes_present", "silent_frame_share",
              "centroid_spread")


def quality_fields(path, model):
    """Card fields from bench/quality.py's ``quality.json`` for the variant whose export is
    ``model`` (its folder name): scores (and the real clips'), minutes, steps, peak_gflops."""
    report = read_json(path, "quality benchmark report")
    variant = os.path.basename(os.path.normpath(model))
    curves = report.get("curves", {}) if isinstance(report, dict) else {}
    if not curves.get(variant):
        raise ValueError(f"--quality_json {path!r} has no curve for variant {variant!r} (the "
                         f"folder name of --model); it has {sorted(curves)}")
    last = curves[variant][-1]
    real = report.get("real", {})
    return {"variant": variant, "minutes": last["minutes"], "benchmark_steps": last["step"],
            "peak_gflops": report.get("peak_gflops"),
            "scores": {key: last[key] for key in SCORE_KEYS if key in last},
            "real_scores": {key: real[key] for key in SCORE_KEYS if key in real},
            "settings": report.get("configs", {}).get(variant)}


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    if not FLAGS.name.isidentifier():
        raise app.UsageError(f"--name must be a plain word (letters, digits, _), got "
                             f"{FLAGS.name!r}")
    try:
        fields = read_json(FLAGS.card, "model card fields")
        if not isinstance(fields, dict):
            raise ValueError(f"--card {FLAGS.card!r} must hold a JSON object")
        if FLAGS.quality_json:
            fields = {**fields, **quality_fields(FLAGS.quality_json, FLAGS.model)}
        folder = pretrained.write(FLAGS.name, *load_keras_generator(FLAGS.model), fields,
                                  FLAGS.root)
    except (OSError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    print(pretrained.describe(FLAGS.name, FLAGS.root))
    print(f"wrote {folder}")
    return 0


def run():
    """Entry point of ``python -m wavegan_tf.cli.pack_pretrained``."""
    run_program(main, __name__)


if __name__ == "__main__":
    run()
