"""Benchmark: seconds per WaveGAN (and SpecGAN) training iteration against this machine's
matmul peak.

One iteration is ``n_critic`` critic updates and one generator update (the paper's unit). Each
(size, mode) runs in its own process so that its peak memory (max RSS) is its own. Modes:
``default`` (float32, TensorFlow graph), ``jit`` (XLA, ``jit_compile=True``), ``bf16`` (Keras
``mixed_bfloat16`` policy), ``fp16`` (``mixed_float16`` with loss scaling, for GPUs). Each is
timed with the convolution formulations of ``--convs`` (``wavegan_tf.cpu.polyphase_conv``:
``tuned``, the plan timed on this machine per layer and product, as training runs by default,
tuned before the timing from the plan cache or measured then, and its seconds printed;
``auto``, the fixed rule per CPU kind; ``standard``, TensorFlow's convolutions)
and each C allocator setting of ``--allocators`` (``released``: what the programs run with,
see ``wavegan_tf.cpu.allocator``; ``glibc``: glibc's defaults, as in one's own Python), and the
speed-up of the first combination over each other one is printed.
``--models wavegan,specgan`` measures both models at each size and mode in the same run, so
their seconds per iteration compare directly (SpecGAN's keys start with ``specgan_``; its
real batches are spectrograms, as after its input pipeline). The fp32 matmul peak is
measured in the same run, so the printed ``peak_ratio`` compares like with like. The last
line holds ``name=value`` pairs.

    python bench/train_step.py                          # d=64/batch 64 and d=16/batch 16
    python bench/train_step.py --sizes 16x16 --modes default,bf16 --iters 3
    python bench/train_step.py --sizes 64x64 --modes default --micro_batches 1,2,4
    python bench/train_step.py --sizes 16x16 --modes default --models wavegan,specgan
    python bench/train_step.py --sizes 64x64 --modes default --convs tuned,auto,standard
    python bench/train_step.py --sizes 64x64 --modes default --convs auto \
        --allocators released,glibc
"""

import itertools
import json
import os
import resource
import subprocess
import sys
import time

from absl import app, flags

import flops

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from wavegan_tf.cli import parse_flags  # noqa: E402  (--help exits 0)

FLAGS = flags.FLAGS
flags.DEFINE_list("sizes", ["64x64", "16x16"], "model_dim x batch_size pairs to measure.")
flags.DEFINE_list("modes", ["default", "jit", "bf16"], "Modes: default, jit, bf16, fp16.")
flags.DEFINE_list("models", ["wavegan"], "Models to measure: wavegan, specgan.")
flags.DEFINE_list("micro_batches", ["1"],
                  "WaveGAN micro_batches values to measure (1: whole batch; K: K equal parts).")
flags.DEFINE_list("convs", ["tuned", "auto", "standard"],
                  "Convolution formulations to measure (tuned, auto, standard, polyphase); the "
                  "first is compared with each other one.")
flags.DEFINE_list("allocators", ["released"],
                  "C allocator settings to measure: released (freed blocks go back to the "
                  "system, as the programs run; wavegan_tf.cpu.allocator) and glibc (its defaults).")
flags.DEFINE_integer("iters", 2, "Timed iterations per measurement (after one warm-up).")
flags.DEFINE_integer("n_critic", 5, "Critic updates per iteration.")
flags.DEFINE_string("worker", None,
                    "Internal: run one 'model:size:mode:micro_batches:conv:allocator' "
                    "measurement and print JSON.")

MODES = ("default", "jit", "bf16", "fp16")
# Keras dtype policies of the mixed-precision modes.
POLICIES = {"bf16": "mixed_bfloat16", "fp16": "mixed_float16"}
MODELS = ("wavegan", "specgan")
ALLOCATORS = ("released", "glibc")


def _models(model, model_dim):
    """(G, D) of ``model`` at width ``model_dim``, the paper's other settings."""
    from wavegan_tf import (build_discriminator, build_generator, build_specgan_discriminator,
                            build_specgan_generator)

    if model == "specgan":
        return (build_specgan_generator(model_dim=model_dim),
                build_specgan_discriminator(model_dim=model_dim))
    return build_generator(model_dim=model_dim), build_discriminator(model_dim=model_dim)


def measure(model_dim, batch_size, mode, iters, n_critic, micro_batches=1, model="wavegan",
            conv="auto"):
    """Times ``iters`` iterations after one warm-up with the convolution formulation ``conv``;
    returns a result dict."""
    from wavegan_tf.cpu.polyphase_conv import conv_formulation

    with conv_formulation(conv):
        result = _measure(model_dim, batch_size, mode, iters, n_critic, micro_batches, model,
                          conv)
    return dict(result, conv=conv)


def _tune(generator, discriminator, batch_size):
    """Adopts the tuned plan of the models' layers; the seconds that took (0 from the cache)."""
    from wavegan_tf.cpu import conv_tuning

    start = time.perf_counter()
    conv_tuning.adopt(conv_tuning.tune(
        conv_tuning.model_shapes((generator, discriminator), batch_size), log=lambda line: None))
    return time.perf_counter() - start


def _measure(model_dim, batch_size, mode, iters, n_critic, micro_batches, model, conv):
    import keras
    import numpy as np
    import tensorflow as tf

    from wavegan_tf import GANTrainer

    if mode in POLICIES:
        keras.mixed_precision.set_global_policy(POLICIES[mode])
    keras.utils.set_random_seed(0)
    generator, discriminator = _models(model, model_dim)
    tune_seconds = (_tune(generator, discriminator, batch_size // micro_batches)
                    if conv == "tuned" else 0.0)
    gan = GANTrainer(generator, discriminator, n_critic=n_critic, seed=0,
                  micro_batches=micro_batches)
    gan.compile(jit_compile=(mode == "jit"))
    example_shape = tuple(discriminator.inputs[0].shape[1:])
    real = np.random.default_rng(0).uniform(-1, 1, (n_critic, batch_size) + example_shape)
    dataset = tf.data.Dataset.from_tensors(real.astype("float32")).repeat()

    times = []
    timer = keras.callbacks.LambdaCallback(
        on_train_batch_end=lambda batch, logs: times.append(time.perf_counter()))
    gan.fit(dataset, steps_per_epoch=iters + 1, epochs=1, verbose=0, shuffle=False,
            callbacks=[timer])
    sec_per_iter = (times[-1] - times[0]) / iters
    work = flops.iteration_flops(gan.generator, gan.discriminator, batch_size, n_critic)
    return {
        "model": model, "model_dim": model_dim, "batch_size": batch_size, "mode": mode,
        "micro_batches": micro_batches, "tune_seconds": tune_seconds,
        "sec_per_iter": sec_per_iter, "gflops": work / sec_per_iter / 1e9,
        "peak_mem_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def run_worker(spec):
    model, size, mode, micro_batches, conv, allocator = spec.split(":")
    if allocator == "released":
        from wavegan_tf.cpu.allocator import release_freed_blocks

        release_freed_blocks()
    model_dim, batch_size = (int(v) for v in size.split("x"))
    print(json.dumps(measure(model_dim, batch_size, mode, FLAGS.iters, FLAGS.n_critic,
                             int(micro_batches), model, conv)))


def run_all():
    for mode in FLAGS.modes:
        if mode not in MODES:
            raise app.UsageError(f"--modes: unknown mode {mode!r}; choose from {MODES}")
    for model in FLAGS.models:
        if model not in MODELS:
            raise app.UsageError(f"--models: unknown model {model!r}; choose from {MODELS}")
    for allocator in FLAGS.allocators:
        if allocator not in ALLOCATORS:
            raise app.UsageError(f"--allocators: unknown setting {allocator!r}; choose from "
                                 f"{ALLOCATORS}")
    from wavegan_tf.cpu.polyphase_conv import FORMULATIONS

    for conv in FLAGS.convs:
        if conv not in FORMULATIONS:
            raise app.UsageError(f"--convs: unknown formulation {conv!r}; choose from "
                                 f"{FORMULATIONS}")
    for value in FLAGS.micro_batches:
        if not value.isdigit() or int(value) < 1:
            raise app.UsageError(f"--micro_batches: {value!r} is not a positive integer")
    peak = flops.matmul_peak_gflops()
    print(f"fp32 matmul peak: {peak:.1f} GFLOP/s")
    summary = {"peak_gflops": round(peak, 1)}
    for size, mode, micro_batches, model in itertools.product(
            FLAGS.sizes, FLAGS.modes, FLAGS.micro_batches, FLAGS.models):
        label = mode if micro_batches == "1" else f"{mode}/mb{micro_batches}"
        first = None
        for conv, allocator in itertools.product(FLAGS.convs, FLAGS.allocators):
            result = _spawn(f"{model}:{size}:{mode}:{micro_batches}:{conv}:{allocator}")
            ratio = result["gflops"] / peak
            line = (f"{model:<8} d={result['model_dim']:<3} batch={result['batch_size']:<3} "
                    f"{label:<10} conv={conv:<9} {allocator:<8} "
                    f"{result['sec_per_iter']:8.2f} s/iter "
                    f"{1 / result['sec_per_iter']:7.3f} it/s {result['gflops']:7.1f} GFLOP/s "
                    f"({ratio:.0%} of fp32 peak) peak mem {result['peak_mem_mb']:.0f} MB")
            if conv == "tuned":
                line += f" (tuning {result['tune_seconds']:.1f} s)"
            key = f"d{result['model_dim']}b{result['batch_size']}_{label.replace('/', '_')}"
            key = key if model == "wavegan" else f"{model}_{key}"
            key += "" if conv == "auto" else f"_{conv}"
            key += "" if allocator == "released" else f"_{allocator}"
            summary[f"{key}_sec_per_iter"] = round(result["sec_per_iter"], 3)
            summary[f"{key}_peak_ratio"] = round(ratio, 3)
            summary[f"{key}_peak_mem_mb"] = round(result["peak_mem_mb"])
            if first is None:
                first = (conv, allocator, result["sec_per_iter"])
            else:
                speedup = result["sec_per_iter"] / first[2]
                line += f"  conv={first[0]} {first[1]} is {speedup:.2f}x faster"
                summary[f"{key}_speedup_{first[0]}"] = round(speedup, 3)
            print(line, flush=True)
    print(" ".join(f"{k}={v}" for k, v in summary.items()))


def _spawn(spec):
    here = os.path.dirname(os.path.abspath(__file__))
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    out = subprocess.run(
        [sys.executable, os.path.join(here, "train_step.py"), f"--worker={spec}",
         f"--iters={FLAGS.iters}", f"--n_critic={FLAGS.n_critic}"],
        check=True, capture_output=True, text=True, env=env, cwd=here)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv):
    del argv
    if FLAGS.worker:
        run_worker(FLAGS.worker)
    else:
        run_all()


if __name__ == "__main__":
    app.run(main, flags_parser=parse_flags)
