"""Benchmark: how fast the drum machine page's morph pad generates, in headless Chromium.

For each model width d, builds a generator (random weights, which cost what trained ones do),
writes its page with ``export_web``, serves it from a local HTTP server and opens it in
Debian's headless Chromium (``/usr/bin/chromium`` through ``/usr/bin/chromedriver``, without a
GPU) with one TensorFlow.js backend (the CPU backend by default: the page's own pick without a
GPU). After one warm-up it moves the morph pad's point to ``--generations`` positions in turn,
each awaited as a drag's newest position is: reported are the milliseconds per generation,
measured in the page from the request to the generated clip (mixing z, G, drawing and starting
the sound), G's share of them (the time the page shows), and generations per second. The last
line holds ``name=value`` pairs.

    python bench/morph_pad.py
    python bench/morph_pad.py --model_dims 16 --generations 20
"""

import os
import sys
import tempfile

import numpy as np
from absl import app, flags

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from headless_chromium import chromium, open_ready, serve  # noqa: E402

FLAGS = flags.FLAGS
flags.DEFINE_list("model_dims", ["16", "64"], "Generator widths d to time.")
flags.DEFINE_enum("backend", "cpu", ["cpu", "webgl"], "TensorFlow.js backend to time.")
flags.DEFINE_integer("generations", 10, "Morph generations timed per model.")
flags.DEFINE_integer("timeout_s", 600, "Longest wait for a page's pads or one generation.")

# Resolves with [ms from the request to the clip, ms of G] for one position of the morph pad.
TIME_ONE = """
const done = arguments[2];
const start = performance.now();
window.wavegan.morphAt(arguments[0], arguments[1]).then(
  (m) => done([performance.now() - start, m.milliseconds]), (e) => done(String(e)));
"""


def time_morphs(driver):
    """[request-to-clip ms, G ms] of each of FLAGS.generations morph generations."""
    rng = np.random.default_rng(0)
    driver.execute_async_script(TIME_ONE, 0.5, 0.5)
    times = []
    for x, y in rng.uniform(0, 1, (FLAGS.generations, 2)).round(3):
        result = driver.execute_async_script(TIME_ONE, float(x), float(y))
        if isinstance(result, str):
            raise RuntimeError(f"the morph pad failed: {result}")
        times.append(result)
    return np.asarray(times)


def bench_width(model_dim, scratch, driver):
    """Writes, serves and times the page of a fresh G of width ``model_dim``."""
    from random_run import make_train_dir

    from wavegan_tf.serving.web_export import export_web

    train_dir = os.path.join(scratch, f"run_d{model_dim}")
    os.mkdir(train_dir)
    make_train_dir(train_dir, model_dim)
    site = export_web(train_dir, os.path.join(scratch, f"site_d{model_dim}"))
    server = serve(site)
    try:
        open_ready(driver, f"http://127.0.0.1:{server.server_port}/", FLAGS.backend,
                   FLAGS.timeout_s)
        backend = driver.execute_script("return window.wavegan.backend()")
        return backend, time_morphs(driver)
    finally:
        server.shutdown()
        server.server_close()


def main(argv):
    del argv
    summary = {}
    with tempfile.TemporaryDirectory() as scratch:
        driver = chromium(os.path.join(scratch, "profile"), FLAGS.timeout_s)
        try:
            for model_dim in (int(d) for d in FLAGS.model_dims):
                backend, times = bench_width(model_dim, scratch, driver)
                total, g = np.median(times, axis=0)
                print(f"d={model_dim} {backend}: {len(times)} morph generations, median "
                      f"{total:.0f} ms each (G {g:.0f} ms; min {times[:, 0].min():.0f}, max "
                      f"{times[:, 0].max():.0f}), {1000 / total:.2f} generations/s", flush=True)
                summary[f"ms_d{model_dim}"] = round(float(total))
                summary[f"g_ms_d{model_dim}"] = round(float(g))
                summary[f"per_s_d{model_dim}"] = round(1000 / float(total), 2)
        finally:
            driver.quit()
    print(" ".join(f"{k}={v}" for k, v in summary.items()))


if __name__ == "__main__":
    app.run(main)
