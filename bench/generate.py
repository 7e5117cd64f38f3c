"""Benchmark: size and generation speed of each export of G: SavedModels, LiteRT, the web page.

Builds a paper-size generator (d=64 by default; the weights are random, which does not change
the cost), exports it at each precision with ``export_generator``, loads each export with plain
``tf.saved_model.load`` and times its ``serving_default`` signature at a fixed batch size; then
writes a LiteRT flatbuffer for each ``--tflite_weights`` type and times it in the
``ai-edge-litert`` interpreter on the same z. The real-time factor is seconds of audio produced
per wall-clock second; GFLOP/s counts G's convolutions and dense layer (bench/flops.py) against
this machine's fp32 matmul peak, measured in the same run. The error of every other export is
measured against the float32 SavedModel on the same z. Sizes are of the files each export
needs (a SavedModel folder, a .tflite, the web page's weights.bin). The last line holds
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
flags.DEFINE_list("precisions", ["float32", "bfloat16"], "SavedModel precisions to compare.")
flags.DEFINE_list("tflite_weights", ["float32", "float16", "int8"],
                  "LiteRT weight types to compare (empty: none).")


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


def time_tflite(path, z, batches):
    """(seconds per call, audio of the first call) for the flatbuffer at ``path``, run as
    ``generate.py --model FILE.tflite`` runs it."""
    from wavegan_tf.tflite_export import load_tflite

    run, _ = load_tflite(path)
    audio = run(z)
    start = time.perf_counter()
    for _ in range(batches):
        run(z)
    return (time.perf_counter() - start) / batches, audio


def folder_mb(path):
    """Size in MiB of the file ``path``, or of all files under the folder ``path``."""
    if os.path.isfile(path):
        return os.path.getsize(path) / 2**20
    return sum(os.path.getsize(os.path.join(root, name))
               for root, _, names in os.walk(path) for name in names) / 2**20


def snr_db(reference, other):
    noise = np.sum((reference - other) ** 2)
    return float("inf") if noise == 0 else float(10 * np.log10(np.sum(reference**2) / noise))


def main(argv):
    del argv
    import flops
    from random_run import make_train_dir
    from train_step import matmul_peak_gflops

    from wavegan_tf.export import export_generator, load_keras_generator
    from wavegan_tf.tflite_export import export_tflite
    from wavegan_tf.web_export import layer_graph

    summary = {"peak_gflops": round(matmul_peak_gflops())}
    with tempfile.TemporaryDirectory() as train_dir:
        config = make_train_dir(train_dir, FLAGS.model_dim)
        z = np.random.default_rng(0).uniform(
            -1, 1, (FLAGS.batch_size, config.latent_dim)).astype(np.float32)
        audio_seconds = FLAGS.batch_size * config.slice_len / config.sample_rate
        generator = load_keras_generator(train_dir)[1]
        work = FLAGS.batch_size * flops.forward_flops(generator)
        web_mb = sum(array.nbytes for array in layer_graph(generator)[1]) / 2**20
        print(f"peak fp32 matmul {summary['peak_gflops']} GFLOP/s; web page weights.bin "
              f"{web_mb:.1f} MiB", flush=True)
        summary["size_mb_web"] = round(web_mb, 1)
        exports = [("savedmodel", precision) for precision in FLAGS.precisions]
        exports += [("tflite", weights) for weights in FLAGS.tflite_weights]
        reference = None
        for kind, variant in exports:
            if kind == "savedmodel":
                path = export_generator(train_dir, os.path.join(train_dir, variant), variant)
                seconds, audio = time_export(path, z, FLAGS.batches)
            else:
                path = export_tflite(train_dir, os.path.join(train_dir, f"g_{variant}.tflite"),
                                     weights=variant)
                seconds, audio = time_tflite(path, z, FLAGS.batches)
            name = f"{kind}_{variant}"
            rtf = audio_seconds / seconds
            gflops = work / seconds / 1e9
            size = folder_mb(path)
            line = (f"d={FLAGS.model_dim} batch={FLAGS.batch_size} {name:<20} {size:7.1f} MiB "
                    f"{seconds:6.3f} s/batch {rtf:7.1f}x real time {gflops:6.1f} GFLOP/s "
                    f"({gflops / summary['peak_gflops']:.0%} of peak)")
            summary[f"size_mb_{name}"] = round(size, 1)
            summary[f"rtf_{name}"] = round(rtf, 1)
            if reference is None:
                reference = audio
            else:
                error = float(np.abs(audio - reference).max())
                snr = snr_db(reference, audio)
                line += f"  max abs error {error:.2e}, SNR {snr:.1f} dB vs {exports[0][0]} " \
                        f"{exports[0][1]}"
                summary[f"max_abs_err_{name}"] = f"{error:.2e}"
                summary[f"snr_db_{name}"] = round(snr, 1)
            print(line, flush=True)
    print(" ".join(f"{k}={v}" for k, v in summary.items()))


if __name__ == "__main__":
    app.run(main, flags_parser=parse_flags)
