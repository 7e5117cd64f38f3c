"""``python -m wavegan_tf``: the package's version (``--version``) and its commands.

``python -m wavegan_tf tune`` times the convolution plan of a model size on this machine ahead of
training (:mod:`wavegan_tf.cpu.conv_tuning`) and prints it; ``train.py`` tunes on its own at
its start, so this only moves the wait, or re-measures with ``--retune``.
"""

import argparse
import sys

from wavegan_tf.version import __version__

COMMANDS = ("wavegan-train", "wavegan-generate", "wavegan-evaluate")
# train.py's --mixed_precision choices (wavegan_tf.training.settings.MIXED_PRECISION_POLICIES,
# not imported here so that --version does not load TensorFlow)
PRECISIONS = ("none", "mixed_bfloat16", "mixed_float16")


def main(argv=None):
    """Parses ``argv``; ``--version`` prints ``wavegan_tf VERSION``, ``tune`` tunes, no
    command lists the commands."""
    parser = argparse.ArgumentParser(
        prog="python -m wavegan_tf",
        description=f"WaveGAN in TensorFlow 2 / Keras 3. Commands: {', '.join(COMMANDS)} "
                    "(each with --help), and 'python -m wavegan_tf tune' below.")
    parser.add_argument("--version", action="version",
                        version=f"wavegan_tf {__version__}")
    commands = parser.add_subparsers(dest="command")
    _add_tune(commands)
    args = parser.parse_args(argv)
    if args.command == "tune":
        return tune(args)
    parser.print_help()
    return 0


def _add_tune(commands):
    tune_parser = commands.add_parser(
        "tune", help="time the convolution plan of a model size on this machine and cache it",
        description="Times each strided convolution product of G and D (forward, input "
                    "gradient, kernel gradient) with TensorFlow's op and as matmuls at the "
                    "given batch size, caches the faster choice for this machine and prints the "
                    "table. Refused where a GPU or TPU is visible (training there keeps "
                    "TensorFlow's convolutions).")
    tune_parser.add_argument("--model", choices=("wavegan", "specgan"), default="wavegan",
                             help="the model whose layers are tuned (SpecGAN's 2-D "
                                  "convolutions have no plan: nothing to tune)")
    tune_parser.add_argument("--model_dim", type=int, default=64, help="model width d")
    tune_parser.add_argument("--batch_size", type=int, default=64,
                             help="clips per layer call: a run's batch size divided by its "
                                  "replicas and micro-batches")
    tune_parser.add_argument("--slice_len", type=int, default=16384, choices=(16384, 32768, 65536),
                             help="samples per clip")
    tune_parser.add_argument("--mixed_precision", choices=PRECISIONS, default="none",
                             help="the training's --mixed_precision (the compute dtype tuned)")
    tune_parser.add_argument("--retune", action="store_true",
                             help="time every shape again, replacing what the cache holds")
    tune_parser.add_argument("--cache", default=None,
                             help="the plan cache file (default: the one train.py --conv_plan "
                                  "tuned reads, conv_plans.json in $WAVEGAN_TF_CACHE_DIR, "
                                  "$XDG_CACHE_HOME/wavegan_tf or ~/.cache/wavegan_tf; training "
                                  "reads only that one)")


def tune(args):
    """The ``tune`` command: prints one line per layer shape and product, then the total."""
    from wavegan_tf.cpu import conv_tuning, polyphase_conv
    from wavegan_tf.cpu.dtype_policy import global_dtype_policy
    from wavegan_tf.training.config import GANConfig

    for name in ("model_dim", "batch_size"):
        if getattr(args, name) < 1:
            print(f"error: --{name} must be a whole number >= 1, got {getattr(args, name)}",
                  file=sys.stderr)
            return 2
    if polyphase_conv.accelerator_present():
        print("error: a GPU or TPU is visible; training there keeps TensorFlow's convolutions, "
              "so there is nothing to tune (hide it, e.g. CUDA_VISIBLE_DEVICES=, to tune the "
              "CPU)", file=sys.stderr)
        return 2
    policy = "float32" if args.mixed_precision == "none" else args.mixed_precision
    try:
        config = GANConfig.for_model(args.model, model_dim=args.model_dim,
                                     batch_size=args.batch_size, slice_len=args.slice_len)
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    with global_dtype_policy(policy):
        models = (config.build_generator(), config.build_discriminator())
        shapes = conv_tuning.model_shapes(models, args.batch_size)
    path = args.cache or conv_tuning.cache_path()
    print(f"machine: {conv_tuning.machine_key()}\ncache: {path}")
    if not shapes:
        print(f"{args.model} has no strided 1-D convolutions with a plan: nothing to tune")
        return 0
    plans = conv_tuning.tune(shapes, path, retune=args.retune, log=print)
    print("\n".join(conv_tuning.plan_report(plans)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
