"""Benchmark: generation speed (real-time factor) of exported SavedModels, float32 vs bfloat16,
with and without the polyphase convolutions.

Builds a paper-size generator (d=64 by default; the weights are random, which does not change
the cost), exports it at each precision and with each convolution formulation of ``--convs``
(``auto``: the library's choice per layer, ``standard``: TensorFlow's transposed convolutions)
with ``export_generator``, loads each export with plain ``tf.saved_model.load`` and times its
``serving_default`` signature at a fixed batch size, the exports taking turns, each keeping its
fastest call. The real-time factor is seconds of audio
produced per wall-clock second; GFLOP/s count G's convolutions and dense layer and are compared
with the fp32 matmul peak measured in the same run. Whether bfloat16 is native on this machine
is printed first (where it is emulated, the bfloat16 export is slower than float32). The error
of each export is measured against the first one on the same z. The last line holds
``name=value`` pairs.

    python bench/generate.py
    python bench/generate.py --model_dim 16 --batches 3
    python bench/generate.py --precisions float32 --convs auto,standard
"""

import os
import sys
import tempfile
import time

import numpy as np
from absl import app, flags

import flops

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

FLAGS = flags.FLAGS
flags.DEFINE_integer("model_dim", 64, "Generator width d (64 in the paper).")
flags.DEFINE_integer("batch_size", 64, "Clips per call of the signature.")
flags.DEFINE_integer("batches", 5, "Timed calls per export (after one warm-up call); the "
                     "exports take turns and each keeps its fastest call.")
flags.DEFINE_list("precisions", ["float32", "bfloat16"], "Export precisions to compare.")
flags.DEFINE_list("convs", ["auto", "standard"],
                  "Convolution formulations to export with (auto, standard, polyphase).")


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


def time_exports(paths, z, batches):
    """[(seconds per call, audio of the first call)] for the exports at ``paths``.

    The exports take turns, one call each per round, and each keeps its fastest call, so a
    load from other processes that comes and goes slows all of them alike.
    """
    import tensorflow as tf

    serves = [tf.saved_model.load(path).signatures["serving_default"] for path in paths]
    z = tf.constant(z)
    audios = [serve(z=z)["audio"].numpy() for serve in serves]
    best = [float("inf")] * len(serves)
    for _ in range(batches):
        for i, serve in enumerate(serves):
            start = time.perf_counter()
            serve(z=z)["audio"].numpy()
            best[i] = min(best[i], time.perf_counter() - start)
    return list(zip(best, audios))


def snr_db(reference, other):
    noise = np.sum((reference - other) ** 2)
    return float("inf") if noise == 0 else float(10 * np.log10(np.sum(reference**2) / noise))


def main(argv):
    del argv
    from wavegan_tf.bfloat16_support import bfloat16_support
    from wavegan_tf.export import export_generator
    from wavegan_tf.polyphase_conv import FORMULATIONS, conv_formulation

    for conv in FLAGS.convs:
        if conv not in FORMULATIONS:
            raise app.UsageError(f"--convs: unknown formulation {conv!r}; choose from "
                                 f"{FORMULATIONS}")
    support = bfloat16_support()
    native = {True: "native", False: "emulated", None: "unknown"}[support.native]
    print(f"bfloat16: {native} ({support.reason})")
    peak = flops.matmul_peak_gflops()
    print(f"fp32 matmul peak: {peak:.1f} GFLOP/s")
    summary = {"bfloat16": native, "peak_gflops": round(peak, 1)}
    with tempfile.TemporaryDirectory() as train_dir:
        config = make_train_dir(train_dir, FLAGS.model_dim)
        work = flops.forward_flops(config.build_gan().generator) * FLAGS.batch_size
        z = np.random.default_rng(0).uniform(
            -1, 1, (FLAGS.batch_size, config.latent_dim)).astype(np.float32)
        audio_seconds = FLAGS.batch_size * config.slice_len / config.sample_rate
        runs = [(precision, conv) for precision in FLAGS.precisions for conv in FLAGS.convs]
        paths = []
        for precision, conv in runs:
            with conv_formulation(conv):
                paths.append(export_generator(
                    train_dir, os.path.join(train_dir, f"{precision}_{conv}"), precision))
        reference = None
        for (precision, conv), (seconds, audio) in zip(runs, time_exports(paths, z,
                                                                          FLAGS.batches)):
            rtf = audio_seconds / seconds
            gflops = work / seconds / 1e9
            key = precision if conv == "auto" else f"{precision}_{conv}"
            line = (f"d={FLAGS.model_dim} batch={FLAGS.batch_size} {precision:<9} "
                    f"conv={conv:<9} {seconds:6.3f} s/batch  {rtf:7.1f}x real time  "
                    f"{gflops:6.1f} GFLOP/s ({gflops / peak:.0%} of fp32 peak)")
            summary[f"rtf_{key}"] = round(rtf, 1)
            summary[f"peak_ratio_{key}"] = round(gflops / peak, 3)
            if reference is None:
                reference = audio
            else:
                error = float(np.abs(audio - reference).max())
                snr = snr_db(reference, audio)
                line += f"  max abs error {error:.2e}, SNR {snr:.1f} dB vs the first"
                summary[f"max_abs_err_{key}"] = f"{error:.2e}"
                summary[f"snr_db_{key}"] = round(snr, 1)
            print(line, flush=True)
    for precision in FLAGS.precisions:
        for conv in FLAGS.convs[1:]:
            if f"rtf_{precision}" in summary:
                summary[f"speedup_auto_vs_{conv}_{precision}"] = round(
                    summary[f"rtf_{precision}"] / summary[f"rtf_{precision}_{conv}"], 2)
    if "rtf_float32" in summary and "rtf_bfloat16" in summary:
        summary["speedup_bfloat16"] = round(summary["rtf_bfloat16"] / summary["rtf_float32"], 2)
    print(" ".join(f"{k}={v}" for k, v in summary.items()))


if __name__ == "__main__":
    app.run(main)
