"""Benchmark: size and generation speed of each export of G: SavedModels (float32 and bfloat16,
with and without the polyphase convolutions), LiteRT flatbuffers and the web page's weights.

Builds a paper-size generator (d=64 by default; the weights are random, which does not change the
cost) and exports it at each ``--precisions`` precision with each ``--convs`` convolution
formulation (``auto``: the library's choice per layer, ``standard``: TensorFlow's transposed
convolutions) with ``export_generator``. Each SavedModel is loaded with plain
``tf.saved_model.load`` and its ``serving_default`` signature timed at a fixed batch size, the
exports taking turns, each keeping its fastest call (so a load from other processes that comes and
goes slows all of them alike). Then a LiteRT flatbuffer for each ``--tflite_weights`` type and
``--tflite_batches`` batch is timed in the ``ai-edge-litert`` interpreter on the same z, as
``generate.py`` runs it. The real-time factor is seconds of audio produced per wall-clock second;
GFLOP/s counts G's convolutions and dense layer (bench/flops.py) against this machine's fp32 matmul
peak, measured in the same run. Whether bfloat16 is native on this machine is printed first (where
it is emulated, the bfloat16 export is slower than float32). The error of every other export is
measured against the first one on the same z. Sizes are of the files each export needs (a SavedModel
folder, a .tflite, the web page's weights.bin). The last line holds ``name=value`` pairs.

    python bench/generate.py
    python bench/generate.py --model_dim 16 --batches 3 --convs auto --tflite_weights ""
"""

import os
import sys
import tempfile
import time

import numpy as np
from absl import app, flags

import flops

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from wavegan_tf.cpu.allocator import release_freed_blocks  # noqa: E402
from wavegan_tf.cli import parse_flags  # noqa: E402  (--help exits 0)

FLAGS = flags.FLAGS
flags.DEFINE_integer("model_dim", 64, "Generator width d (64 in the paper).")
flags.DEFINE_integer("batch_size", 64, "Clips per call of the signature.")
flags.DEFINE_integer("batches", 5, "Timed calls per export (after one warm-up call); the "
                     "SavedModels take turns and each keeps its fastest call.")
flags.DEFINE_list("precisions", ["float32", "bfloat16"], "SavedModel precisions to compare.")
flags.DEFINE_list("convs", ["auto", "standard"],
                  "Convolution formulations to export the SavedModels with (auto, standard, "
                  "polyphase).")
flags.DEFINE_list("tflite_weights", ["float32", "float16", "int8"],
                  "LiteRT weight types to compare (empty: none).")
flags.DEFINE_list("tflite_batches", ["1", "16"],
                  "Clips per call of the LiteRT flatbuffers (generate.py --tflite_batch), each "
                  "timed with each weight type; rows of batches other than 1 end in _b<N>.")


def time_exports(paths, z, batches):
    """[(seconds per call, audio of the first call)] for the SavedModels at ``paths``.

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


def time_tflite(path, z, batches):
    """(seconds per call, audio of the first call) for the flatbuffer at ``path``, run as
    ``generate.py --model FILE.tflite`` runs it."""
    from wavegan_tf.serving.tflite_export import load_tflite

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


def _check_convs():
    from wavegan_tf.cpu.polyphase_conv import FORMULATIONS

    for conv in FLAGS.convs:
        if conv not in FORMULATIONS:
            raise app.UsageError(f"--convs: unknown formulation {conv!r}; choose from "
                                 f"{FORMULATIONS}")


def _savedmodels(train_dir):
    """[(name, path)] of the SavedModel exports: every precision with every formulation."""
    from wavegan_tf.serving.export import export_generator
    from wavegan_tf.cpu.polyphase_conv import conv_formulation

    exports = []
    for precision in FLAGS.precisions:
        for conv in FLAGS.convs:
            with conv_formulation(conv):
                path = export_generator(train_dir, os.path.join(train_dir, f"{precision}_{conv}"),
                                        precision)
            name = f"savedmodel_{precision}" + ("" if conv == "auto" else f"_{conv}")
            exports.append((name, path))
    return exports


def _timed_exports(train_dir, z):
    """[(name, path, seconds per call, audio)] of every export, SavedModels first."""
    from wavegan_tf.serving.tflite_export import export_tflite

    savedmodels = _savedmodels(train_dir)
    timed = [(name, path, seconds, audio) for (name, path), (seconds, audio)
             in zip(savedmodels, time_exports([p for _, p in savedmodels], z, FLAGS.batches))]
    for weights in FLAGS.tflite_weights:
        for batch in _tflite_batches():
            name = f"tflite_{weights}" + ("" if batch == 1 else f"_b{batch}")
            path = export_tflite(train_dir, os.path.join(train_dir, f"g_{name}.tflite"),
                                 weights=weights, batch=batch)
            timed.append((name, path) + time_tflite(path, z, FLAGS.batches))
    return timed


def _tflite_batches():
    """--tflite_batches as whole numbers; UsageError naming the flag for others."""
    try:
        batches = [int(value) for value in FLAGS.tflite_batches]
    except ValueError:
        batches = [0]
    if any(batch < 1 for batch in batches):
        raise app.UsageError(f"--tflite_batches takes whole numbers >= 1, got "
                             f"{','.join(FLAGS.tflite_batches)}")
    return batches


def main(argv):
    del argv
    release_freed_blocks()  # as the programs run (wavegan_tf.cpu.allocator)
    from random_run import make_train_dir

    from wavegan_tf.cpu.bfloat16_support import bfloat16_support
    from wavegan_tf.serving.export import load_keras_generator
    from wavegan_tf.serving.web_export import layer_graph

    _check_convs()
    _tflite_batches()
    support = bfloat16_support()
    native = {True: "native", False: "emulated", None: "unknown"}[support.native]
    print(f"bfloat16: {native} ({support.reason})")
    peak = flops.matmul_peak_gflops()
    summary = {"bfloat16": native, "peak_gflops": round(peak, 1)}
    with tempfile.TemporaryDirectory() as train_dir:
        config = make_train_dir(train_dir, FLAGS.model_dim)
        z = np.random.default_rng(0).uniform(
            -1, 1, (FLAGS.batch_size, config.latent_dim)).astype(np.float32)
        audio_seconds = FLAGS.batch_size * config.slice_len / config.sample_rate
        generator = load_keras_generator(train_dir)[1]
        work = FLAGS.batch_size * flops.forward_flops(generator)
        web_mb = sum(array.nbytes for array in layer_graph(generator)[1]) / 2**20
        print(f"fp32 matmul peak: {peak:.1f} GFLOP/s; web page weights.bin {web_mb:.1f} MiB",
              flush=True)
        summary["size_mb_web"] = round(web_mb, 1)
        timed = _timed_exports(train_dir, z)
        reference = None
        for name, path, seconds, audio in timed:
            rtf = audio_seconds / seconds
            gflops = work / seconds / 1e9
            size = folder_mb(path)
            line = (f"d={FLAGS.model_dim} batch={FLAGS.batch_size} {name:<28} {size:7.1f} MiB "
                    f"{seconds:6.3f} s/batch {rtf:7.1f}x real time {gflops:6.1f} GFLOP/s "
                    f"({gflops / peak:.0%} of fp32 peak)")
            summary[f"size_mb_{name}"] = round(size, 1)
            summary[f"rtf_{name}"] = round(rtf, 1)
            summary[f"peak_ratio_{name}"] = round(gflops / peak, 3)
            if reference is None:
                reference = (name, audio)
            else:
                error = float(np.abs(audio - reference[1]).max())
                snr = snr_db(reference[1], audio)
                line += f"  max abs error {error:.2e}, SNR {snr:.1f} dB vs {reference[0]}"
                summary[f"max_abs_err_{name}"] = f"{error:.2e}"
                summary[f"snr_db_{name}"] = round(snr, 1)
            print(line, flush=True)
    _speedups(summary)
    print(" ".join(f"{k}={v}" for k, v in summary.items()))


def _speedups(summary):
    """Adds the auto-over-other-formulation and bfloat16-over-float32 speed-ups to ``summary``."""
    for precision in FLAGS.precisions:
        auto = summary.get(f"rtf_savedmodel_{precision}")
        for conv in FLAGS.convs:
            other = summary.get(f"rtf_savedmodel_{precision}_{conv}")
            if auto and other:
                summary[f"speedup_auto_vs_{conv}_{precision}"] = round(auto / other, 2)
    if "rtf_savedmodel_float32" in summary and "rtf_savedmodel_bfloat16" in summary:
        summary["speedup_bfloat16"] = round(summary["rtf_savedmodel_bfloat16"]
                                            / summary["rtf_savedmodel_float32"], 2)


if __name__ == "__main__":
    app.run(main, flags_parser=parse_flags)
