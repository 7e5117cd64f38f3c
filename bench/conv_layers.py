"""Benchmark: each product of each WaveGAN convolution as TensorFlow's op vs a matmul.

A strided convolution takes part in training through three products: the forward one (input to
output), the input gradient (output to input; also the forward pass of G's transposed
convolutions) and the kernel gradient. ``wavegan_tf.cpu.polyphase_conv`` can run each as matmuls;
this times both ways, in one process, for D's five convolution shapes at ``--model_dim`` and
``--batch_size`` (G's transposed convolutions are the same shapes the other way: G's first layer
is D's last). The rules in ``polyphase_conv.rule_plan`` come from this table.

Prints ms per call (each the best of a few calls after a warm-up, timed by
``wavegan_tf.cpu.conv_tuning.time_products``, as the tuned plan times them), GFLOP/s, the ratio
TensorFlow / matmul (above 1: the matmul is faster) and what the rule for this CPU
(``polyphase_conv.cpu_kind``) picks; then the sum over the 15 products with TensorFlow's ops
everywhere, with the rule's picks and with the faster of the two everywhere (what
``--conv_plan tuned`` runs). The last line holds ``name=value`` pairs.

    python bench/conv_layers.py --model_dim 64 --batch_size 64
"""

import os
import sys

from absl import app, flags

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

FLAGS = flags.FLAGS
flags.DEFINE_integer("model_dim", 64, "Model width d (64 in the paper).")
flags.DEFINE_integer("batch_size", 64, "Clips per call (64 in the paper).")
flags.DEFINE_integer("slice_len", 16384, "Samples per clip.")

KERNEL_LEN, STRIDE = 25, 4


def d_shapes(model_dim, slice_len):
    """(input length, in channels, out channels) of D's stride-4 convolutions."""
    shapes, length, channels = [], slice_len, 1
    for i in range(5):
        shapes.append((length, channels, model_dim * 2**i))
        length, channels = length // STRIDE, model_dim * 2**i
    return shapes


def main(argv):
    del argv
    from wavegan_tf.cpu import conv_tuning, polyphase_conv

    kind = polyphase_conv.cpu_kind()
    print(f"CPU kind for the rule: {kind or 'none (GPU/TPU or unknown: TensorFlow everywhere)'}")
    rows = []
    for length, cin, cout in d_shapes(FLAGS.model_dim, FLAGS.slice_len):
        steps = length // STRIDE
        shape = conv_tuning.Shape(FLAGS.batch_size, "float32", steps, cin, cout, KERNEL_LEN,
                                  STRIDE)
        flop = 2 * steps * KERNEL_LEN * cin * cout * FLAGS.batch_size
        plan = polyphase_conv.rule_plan(kind, steps, cin, cout)
        for product, times in conv_tuning.time_products(shape).items():
            rows.append((f"{length}x{cin}->{steps}x{cout}", product, flop, *times,
                         getattr(plan, product)))
            _print(rows[-1])
    standard = sum(r[3] for r in rows)
    chosen = sum(r[4] if r[5] else r[3] for r in rows)
    best = sum(min(r[3], r[4]) for r in rows)
    total_flop = sum(r[2] for r in rows)
    print(f"sum of the {len(rows)} products: TensorFlow {standard * 1e3:.1f} ms, rule "
          f"{chosen * 1e3:.1f} ms ({standard / chosen:.2f}x, {total_flop / chosen / 1e9:.1f} "
          f"GFLOP/s), faster of the two {best * 1e3:.1f} ms")
    summary = {"standard_ms": round(standard * 1e3, 1), "rule_ms": round(chosen * 1e3, 1),
               "best_ms": round(best * 1e3, 1), "rule_speedup": round(standard / chosen, 3),
               "cpu_kind": kind or "none"}
    print(" ".join(f"{k}={v}" for k, v in summary.items()))


def _print(row):
    name, product, flop, standard, matmul, chosen = row
    print(f"{name:<22} {product:<16} TensorFlow {standard * 1e3:8.1f} ms "
          f"({flop / standard / 1e9:6.1f} GFLOP/s)  matmul {matmul * 1e3:8.1f} ms "
          f"({flop / matmul / 1e9:6.1f} GFLOP/s)  ratio {standard / matmul:5.2f}  rule: "
          f"{'matmul' if chosen else 'TensorFlow'}", flush=True)


if __name__ == "__main__":
    app.run(main)
