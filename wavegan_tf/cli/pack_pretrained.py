"""Packs a trained generator as a pretrained model of the package (wavegan_tf/pretrained/NAME/).

  python -m wavegan_tf.cli.pack_pretrained --model runs/digits/generators/fast \\
      --name digits --card card.json

--model is a training directory or an export; --card a JSON object of model-card fields
(description, data, licence, command, minutes, peak_gflops, scores, ...). The card also gets
the step, family, size and the measured error of the float16 storage.
"""

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
flags.DEFINE_string("root", pretrained.PRETRAINED_DIR, "The folder of pretrained models.")
for _name in ("model", "name", "card"):
    flags.mark_flag_as_required(_name)


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
