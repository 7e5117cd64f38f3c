"""Benchmark: which tensors are alive at the memory peak of a WaveGAN training step.

Builds G, D and the trainer at ``--model_dim`` and ``--batch_size``, runs one training step
(``--n_critic`` critic updates and one generator update) once to trace it, then runs it again under
TensorFlow's profiler (host tracer level 3, which records every allocation and release of
TensorFlow's CPU allocator with the op and shape it was for; the script sets
``TF_CPU_ALLOCATOR_USE_BFC=true``, without which only oneDNN builds on Intel CPUs record them).
Replaying those events gives the live bytes over the step; the script prints the step's live peak,
what was alive before it (weights, optimizer state, the real batch), and the ``--top`` op/shape
groups alive at the peak, largest first, with the process's peak resident size (max RSS) beside it.
RSS is higher than the live peak: TensorFlow itself, the step's graph and kernels, and the allocator
keeping freed memory resident (see the README's Convolution formulations section). The last line
holds ``name=value`` pairs.

    python bench/memory_peak.py                               # paper size, d=64, batch 64
    python bench/memory_peak.py --model_dim 16 --batch_size 16 --convs standard
"""

import collections
import glob
import os
import resource
import sys
import tempfile

from absl import app, flags

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# TensorFlow's CPU allocator records allocations (and the profiler sees them) only as its BFC
# allocator: the default with oneDNN (Intel CPUs), chosen here for the others (AMD, ARM).
os.environ.setdefault("TF_CPU_ALLOCATOR_USE_BFC", "true")

from wavegan_tf.cpu.allocator import release_freed_blocks  # noqa: E402
from wavegan_tf.cli import parse_flags  # noqa: E402  (--help exits 0)

FLAGS = flags.FLAGS
flags.DEFINE_integer("model_dim", 64, "Model width d (64 in the paper).")
flags.DEFINE_integer("batch_size", 64, "Clips per critic and generator update (64 in the paper).")
flags.DEFINE_integer("n_critic", 1, "Critic updates in the profiled step (the peak of one "
                     "update is that of five).")
flags.DEFINE_enum("convs", "auto", ["auto", "standard", "polyphase"],
                  "Convolution formulation (wavegan_tf.cpu.polyphase_conv).")
flags.DEFINE_integer("top", 15, "Op/shape groups alive at the peak to print.")

MIB = 2**20


def profiled_step(model_dim, batch_size, n_critic, conv, log_dir):
    """Runs one training step, then profiles a second one into ``log_dir``."""
    import keras
    import numpy as np
    import tensorflow as tf

    from wavegan_tf import GANTrainer, build_discriminator, build_generator
    from wavegan_tf.cpu.polyphase_conv import conv_formulation

    with conv_formulation(conv):
        keras.utils.set_random_seed(0)
        gan = GANTrainer(build_generator(model_dim=model_dim),
                      build_discriminator(model_dim=model_dim), n_critic=n_critic, seed=0)
        gan.compile()
        shape = (n_critic, batch_size) + tuple(gan.discriminator.inputs[0].shape[1:])
        real = tf.constant(np.random.default_rng(0).uniform(-1, 1, shape).astype("float32"))
        step = tf.function(gan.train_step)
        step(real)
        options = tf.profiler.experimental.ProfilerOptions(host_tracer_level=3)
        tf.profiler.experimental.start(log_dir, options=options)
        step(real)
        tf.profiler.experimental.stop()


def allocator_events(log_dir):
    """``(time, is_allocation, stats)`` of every allocator event in the profile, in time order;
    ``stats`` maps stat names (``addr``, ``bytes_allocated``, ``allocation_bytes``, ``tf_op``,
    ``shape``) to values."""
    from tensorflow.tsl.profiler.protobuf import xplane_pb2

    paths = glob.glob(os.path.join(log_dir, "**", "*.xplane.pb"), recursive=True)
    if not paths:
        raise RuntimeError(f"the profiler wrote no *.xplane.pb under {log_dir}")
    space = xplane_pb2.XSpace()
    with open(paths[0], "rb") as f:
        space.ParseFromString(f.read())
    events = []
    for plane in space.planes:
        names = {key: meta.name for key, meta in plane.event_metadata.items()}
        stat_names = {key: meta.name for key, meta in plane.stat_metadata.items()}
        for line in plane.lines:
            for event in line.events:
                kind = names.get(event.metadata_id)
                if kind not in ("MemoryAllocation", "MemoryDeallocation"):
                    continue
                stats = {}
                for stat in event.stats:
                    which = stat.WhichOneof("value")
                    value = getattr(stat, which)
                    stats[stat_names[stat.metadata_id]] = (
                        stat_names[value] if which == "ref_value" else value)
                events.append((line.timestamp_ns * 1000 + event.offset_ps,
                               kind == "MemoryAllocation", stats))
    return sorted(events, key=lambda e: e[0])


def live_at_peak(events):
    """``(bytes before the step, peak bytes, {(op, shape): bytes alive at the peak})``."""
    if not events:
        raise RuntimeError("the profile holds no allocator events")
    _, first_is_allocation, first = events[0]
    change = first["allocation_bytes"] if first_is_allocation else -first["allocation_bytes"]
    before = first["bytes_allocated"] - change
    live, peak, at_peak = {}, before, {}
    for _, is_allocation, stats in events:
        if is_allocation:
            live[stats["addr"]] = (stats.get("tf_op", "?"), stats.get("shape", "?"),
                                   stats["allocation_bytes"])
        else:
            live.pop(stats["addr"], None)
        if stats["bytes_allocated"] > peak:
            peak, at_peak = stats["bytes_allocated"], dict(live)
    groups = collections.Counter()
    for op, shape, size in at_peak.values():
        groups[(op, shape)] += size
    return before, peak, groups


def main(argv):
    del argv
    release_freed_blocks()  # as the programs run (wavegan_tf.cpu.allocator)
    for name in ("model_dim", "batch_size", "n_critic", "top"):
        if getattr(FLAGS, name) < 1:
            raise app.UsageError(f"--{name} must be >= 1, got {getattr(FLAGS, name)}")
    with tempfile.TemporaryDirectory() as log_dir:
        profiled_step(FLAGS.model_dim, FLAGS.batch_size, FLAGS.n_critic, FLAGS.convs, log_dir)
        before, peak, groups = live_at_peak(allocator_events(log_dir))
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"d={FLAGS.model_dim} batch={FLAGS.batch_size} n_critic={FLAGS.n_critic} "
          f"conv={FLAGS.convs}: live before the step {before / MIB:.0f} MiB, live peak "
          f"{peak / MIB:.0f} MiB (+{(peak - before) / MIB:.0f}), process peak RSS {rss:.0f} MiB")
    print("alive at the peak (MiB, op, shape), step tensors only:")
    for (op, shape), size in groups.most_common(FLAGS.top):
        print(f"  {size / MIB:8.1f}  {op}  {shape}")
    print(f"live_before_mib={before / MIB:.0f} live_peak_mib={peak / MIB:.0f} "
          f"peak_rss_mib={rss:.0f} groups_at_peak={len(groups)}")


if __name__ == "__main__":
    app.run(main, flags_parser=parse_flags)
