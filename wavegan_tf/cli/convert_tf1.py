"""Converts a checkpoint of the original TF1 WaveGAN (chrisdonahue/wavegan) into a training
directory that generate.py, the exporter, evaluate.py and train.py accept.

Installed as the command wavegan-convert-tf1; in a source checkout also python convert_tf1.py.
Examples:

  python convert_tf1.py --checkpoint old_train/model.ckpt-200000 --out runs/sc09
  python convert_tf1.py --checkpoint old_train --out runs/sc09      # its newest checkpoint
  python convert_tf1.py --checkpoint old/model.ckpt-5000 --out runs/pads --arg wavegan_dim,32

The original's settings come from the args.txt beside the checkpoint (or --args_txt); --arg
sets one of them as an args.txt line would. Every variable is checked against them.

Expected failures (no checkpoint, a file that is not one, a missing variable or a shape that
does not fit the settings, an --out that already holds files) are printed as "error: ..."
with exit status 1; nothing is written to --out then.
"""

import sys

from absl import app, flags

from wavegan_tf.cli import run_program
from wavegan_tf.serving import tf1_checkpoint

FLAGS = flags.FLAGS

flags.DEFINE_string(
    "checkpoint", None,
    "The original's checkpoint, OLD_TRAIN_DIR/model.ckpt-N, or OLD_TRAIN_DIR for its newest.")
flags.DEFINE_string(
    "out", None, "The training directory to create; it must not exist or must be empty.")
flags.DEFINE_string(
    "args_txt", None,
    "The original's args.txt holding the run's settings (default: the args.txt beside the "
    "checkpoint, if there is one; else the original's defaults and --arg).")
flags.DEFINE_multi_string(
    "arg", [],
    "One setting of the original's train_wavegan.py as an args.txt line, NAME,VALUE (e.g. "
    "wavegan_dim,32 or data_slice_len,65536); repeatable; overrides --args_txt. Names: "
    + ", ".join(sorted(tf1_checkpoint.ORIGINAL_DEFAULTS)))
flags.mark_flags_as_required(["checkpoint", "out"])


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    try:
        overrides = dict(tf1_checkpoint.parse_arg(text) for text in FLAGS.arg)
        result = tf1_checkpoint.convert_checkpoint(FLAGS.checkpoint, FLAGS.out,
                                                   args_txt=FLAGS.args_txt, overrides=overrides)
    except (OSError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    print(f"converted {result.checkpoint} (step {result.step}) into {result.out_dir}: "
          f"D {result.discriminator}, optimizer state: {result.optimizer_state}")
    print(f"continue training with: python train.py --train_dir {result.out_dir} "
          f"--train_steps N (and --data_dir if the original's data folder moved)")
    return 0


def run():
    """Entry point of ``wavegan-convert-tf1`` and ``python convert_tf1.py``."""
    run_program(main, __name__)


if __name__ == "__main__":
    run()
