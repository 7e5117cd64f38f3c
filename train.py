"""``python train.py`` in a source checkout: the same program as ``wavegan-train``."""
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # hide TensorFlow's start-up notices

from wavegan_tf.cli.train import run  # noqa: E402

if __name__ == "__main__":
    run()
