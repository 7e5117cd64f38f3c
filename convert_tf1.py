"""``python convert_tf1.py`` in a source checkout: the same program as ``wavegan-convert-tf1``."""
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # hide TensorFlow's start-up notices

from wavegan_tf.cli.convert_tf1 import run  # noqa: E402

if __name__ == "__main__":
    run()
