"""Benchmark: generation speed (real-time factor) of exported SavedModels, float32 vs bfloat16.

Builds a paper-size generator (d=64 by default; the weights are random, which does not change
the cost), exports it at each precision with ``export_generator``, loads each export with plain
``tf.saved_model.load`` and times its ``serving_default`` signature at a fixed batch size. The
real-time factor is seconds of audio produced per wall-clock second. The error of the reduced
precision export is measured against the float32 export on the same z. The last line holds
``name=value`` pairs.

    python bench/generate.py
    python bench/generate.py --model_dim 16 --batches 3
"""

import os
import sys
import tempfile
import time

import numpy as np
from absl import app, flags

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from wavegan_tf.cli import parse_flags  # noqa: E402  (--help exits 0)

FLAGS = flags.FLAGS
flags.DEFINE_integer("model_dim", 64, "Generator width d (64 in the paper).")
flags.DEFINE_integer("batch_size", 64, "Clips per call of the signature.")
flags.DEFINE_integer("batches", 5, "Timed calls per export (after one warm-up call).")
flags.DEFINE_list("precisions", ["float32", "bfloat16"], "Export precisions to compare.")


def make_train_dir(directory, model_dim):
    """A training directory with a config and one checkpoint of a freshly built WaveGAN."""
    import tensorflow as tf

    from wavegan_tf import checkpoints
    from wavegan_tf.config import WaveGANConfig

    config = WaveGANConfig(model_dim=model_dim)
    config.save(directory)
    step = tf.Variable(0, dtype=tf.int64)
    tf.train.CheckpointManager(checkpoints.make_checkpoint(config.build_gan(), step),
                               checkpoints.checkpoint_dir(directory), max_to_keep=1).save()
    return config


def time_export(path, z, batches):
    """(seconds per call, audio of the first call) for the export at ``path``."""
    import tensorflow as tf

    serve = tf.saved_model.load(path).signatures["serving_default"]
    z = tf.constant(z)
    audio = serve(z=z)["audio"].numpy()
    start = time.perf_counter()
    for _ in range(batches):
        serve(z=z)["audio"].numpy()
    return (time.perf_counter() - start) / batches, audio


def snr_db(reference, other):
    noise = np.sum((reference - other) ** 2)
    return float("inf") if noise == 0 else float(10 * np.log10(np.sum(reference**2) / noise))


def main(argv):
    del argv
    from wavegan_tf.export import export_generator

    summary = {}
    with tempfile.TemporaryDirectory() as train_dir:
        config = make_train_dir(train_dir, FLAGS.model_dim)
        z = np.random.default_rng(0).uniform(
            -1, 1, (FLAGS.batch_size, config.latent_dim)).astype(np.float32)
        audio_seconds = FLAGS.batch_size * config.slice_len / config.sample_rate
        reference = None
        for precision in FLAGS.precisions:
            path = export_generator(train_dir, os.path.join(train_dir, precision), precision)
            seconds, audio = time_export(path, z, FLAGS.batches)
            rtf = audio_seconds / seconds
            line = (f"d={FLAGS.model_dim} batch={FLAGS.batch_size} {precision:<9} "
                    f"{seconds:6.3f} s/batch  {rtf:7.1f}x real time")
            summary[f"rtf_{precision}"] = round(rtf, 1)
            if reference is None:
                reference = audio
            else:
                error = float(np.abs(audio - reference).max())
                snr = snr_db(reference, audio)
                line += f"  max abs error {error:.2e}, SNR {snr:.1f} dB vs {FLAGS.precisions[0]}"
                summary[f"max_abs_err_{precision}"] = f"{error:.2e}"
                summary[f"snr_db_{precision}"] = round(snr, 1)
            print(line, flush=True)
    if "rtf_float32" in summary and "rtf_bfloat16" in summary:
        summary["speedup_bfloat16"] = round(summary["rtf_bfloat16"] / summary["rtf_float32"], 2)
    print(" ".join(f"{k}={v}" for k, v in summary.items()))


if __name__ == "__main__":
    app.run(main, flags_parser=parse_flags)
