"""``python evaluate.py`` in a source checkout: the same program as ``wavegan-evaluate``."""
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # hide TensorFlow's start-up notices

from wavegan_tf.cli.evaluate import run  # noqa: E402

if __name__ == "__main__":
    run()
