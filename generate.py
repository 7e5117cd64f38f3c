"""``python generate.py`` in a source checkout: the same program as ``wavegan-generate``."""
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # hide TensorFlow's start-up notices

from wavegan_tf.cli.generate import run  # noqa: E402

if __name__ == "__main__":
    run()
