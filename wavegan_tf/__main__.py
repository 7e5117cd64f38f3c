"""``python -m wavegan_tf``: the package's version (``--version``) and its commands."""

import argparse
import sys

from wavegan_tf.version import __version__

COMMANDS = ("wavegan-train", "wavegan-generate", "wavegan-evaluate")


def main(argv=None):
    """Parses ``argv``; ``--version`` prints ``wavegan_tf VERSION``, no flag lists the commands."""
    parser = argparse.ArgumentParser(
        prog="python -m wavegan_tf",
        description=f"WaveGAN in TensorFlow 2 / Keras 3. Commands: {', '.join(COMMANDS)} "
                    "(each with --help).")
    parser.add_argument("--version", action="version",
                        version=f"wavegan_tf {__version__}")
    parser.parse_args(argv)
    parser.print_help()
    return 0


if __name__ == "__main__":
    sys.exit(main())
