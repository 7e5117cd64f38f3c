"""Benchmark: each WaveGAN convolution shape as TensorFlow's convolution vs the polyphase matmul.

For every layer of D (stride-4 convolutions) and G (stride-4 transposed convolutions) at
``--model_dim`` and ``--batch_size``, times the work training and generation do with it, once
per formulation of ``wavegan_tf.polyphase_conv``, in the same process:

* D, ``train``: forward, then the gradients of the input and the kernel;
* D, ``gp``: the gradient penalty's part: the input gradient of a LeakyReLU'd layer, then the
  kernel gradient of its squared norm (a second derivative);
* G, ``train``: forward and both gradients; G, ``generate``: forward only.

Prints ms per call (best of ``--repeats``), GFLOP/s and which formulation the "auto" rule picks;
the ratio standard / polyphase > 1 means the matmul is faster. The last line holds
``name=value`` pairs.

    python bench/conv_layers.py --model_dim 64 --batch_size 16
"""

import os
import sys
import time

from absl import app, flags

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

FLAGS = flags.FLAGS
flags.DEFINE_integer("model_dim", 64, "Model width d (64 in the paper).")
flags.DEFINE_integer("batch_size", 16, "Clips per call.")
flags.DEFINE_integer("repeats", 3, "Timed calls per measurement (best kept), after one warm-up.")
flags.DEFINE_integer("slice_len", 16384, "Samples per clip.")

KERNEL_LEN, STRIDE = 25, 4


def d_shapes(model_dim, slice_len):
    """(input length, in channels, out channels) of D's stride-4 convolutions."""
    shapes, length, channels = [], slice_len, 1
    for i in range(5):
        shapes.append((length, channels, model_dim * 2**i))
        length, channels = length // STRIDE, model_dim * 2**i
    return shapes


def g_shapes(model_dim):
    """(input length, in channels, out channels) of G's stride-4 transposed convolutions."""
    channels = [16 * model_dim // 2**i for i in range(5)] + [1]
    return [(16 * 4**i, channels[i], channels[i + 1]) for i in range(5)]


def best_time(fn, *args):
    fn(*args)
    best = float("inf")
    for _ in range(FLAGS.repeats):
        start = time.perf_counter()
        for value in fn(*args):
            value.numpy()
        best = min(best, time.perf_counter() - start)
    return best


def d_functions(conv):
    import tensorflow as tf

    @tf.function
    def train(x, w):
        with tf.GradientTape() as tape:
            tape.watch([x, w])
            y = conv(x, w)
            loss = tf.reduce_sum(y * y)
        return tape.gradient(loss, [x, w])

    @tf.function
    def gp(x, w):
        with tf.GradientTape() as outer:
            outer.watch(w)
            with tf.GradientTape() as inner:
                inner.watch(x)
                y = conv(x, w)
                y = tf.where(y > 0, y, 0.2 * y)
                score = tf.reduce_sum(y)
            grad = inner.gradient(score, x)
            penalty = tf.reduce_sum(grad * grad)
        return [outer.gradient(penalty, w)]

    return {"train": train, "gp": gp}


def g_functions(conv_t):
    import tensorflow as tf

    @tf.function
    def train(x, w):
        with tf.GradientTape() as tape:
            tape.watch([x, w])
            y = conv_t(x, w)
            loss = tf.reduce_sum(y * y)
        return tape.gradient(loss, [x, w])

    @tf.function
    def generate(x, w):
        return [conv_t(x, w)]

    return {"train": train, "generate": generate}


def main(argv):
    del argv
    import tensorflow as tf

    from wavegan_tf import polyphase_conv

    batch = FLAGS.batch_size
    standard_d = lambda x, w: tf.nn.conv1d(x, w, STRIDE, "SAME")  # noqa: E731
    poly_d = lambda x, w: polyphase_conv.conv1d(x, w, STRIDE)  # noqa: E731

    def standard_g(x, w):
        shape = [tf.shape(x)[0], x.shape[1] * STRIDE, w.shape[1]]
        return tf.nn.conv1d_transpose(x, w, shape, STRIDE, "SAME")

    poly_g = lambda x, w: polyphase_conv.conv1d_transpose(x, w, STRIDE)  # noqa: E731
    rows = []
    for length, cin, cout in d_shapes(FLAGS.model_dim, FLAGS.slice_len):
        x = tf.random.normal([batch, length, cin])
        w = tf.random.normal([KERNEL_LEN, cin, cout]) * 0.05
        flop = 2 * (length // STRIDE) * KERNEL_LEN * cin * cout * batch
        auto = polyphase_conv.use_polyphase(length // STRIDE, max(cin, cout))
        for kind, passes in (("train", 3), ("gp", 4)):
            fs, fp = d_functions(standard_d)[kind], d_functions(poly_d)[kind]
            rows.append((f"D {length}x{cin}->{cout}", kind, flop * passes,
                         best_time(fs, x, w), best_time(fp, x, w), auto))
            _print(rows[-1])
    for length, cin, cout in g_shapes(FLAGS.model_dim):
        x = tf.random.normal([batch, length, cin])
        w = tf.random.normal([KERNEL_LEN, cout, cin]) * 0.05
        flop = 2 * length * KERNEL_LEN * cin * cout * batch
        auto = polyphase_conv.use_polyphase(length, max(cin, cout))
        for kind, passes in (("train", 3), ("generate", 1)):
            fs, fp = g_functions(standard_g)[kind], g_functions(poly_g)[kind]
            rows.append((f"G {length}x{cin}->{cout}", kind, flop * passes,
                         best_time(fs, x, w), best_time(fp, x, w), auto))
            _print(rows[-1])
    summary = {}
    for kind in ("train", "gp", "generate"):
        selected = [r for r in rows if r[1] == kind]
        standard = sum(r[3] for r in selected)
        chosen = sum(r[4] if r[5] else r[3] for r in selected)
        best = sum(min(r[3], r[4]) for r in selected)
        summary[f"{kind}_standard_ms"] = round(standard * 1e3, 1)
        summary[f"{kind}_auto_ms"] = round(chosen * 1e3, 1)
        summary[f"{kind}_best_ms"] = round(best * 1e3, 1)
    print(" ".join(f"{k}={v}" for k, v in summary.items()))


def _print(row):
    name, kind, flop, standard, poly, auto = row
    print(f"{name:<20} {kind:<8} standard {standard * 1e3:8.1f} ms ({flop / standard / 1e9:6.1f} "
          f"GFLOP/s)  polyphase {poly * 1e3:8.1f} ms ({flop / poly / 1e9:6.1f} GFLOP/s)  "
          f"standard/polyphase {standard / poly:5.2f}  auto: {'polyphase' if auto else 'standard'}",
          flush=True)


if __name__ == "__main__":
    app.run(main)
