"""Benchmark: how fast the drum machine page generates a clip in headless Chromium.

Builds a paper-size generator (d=64 by default; random weights, which does not change the
cost), writes its page with ``export_web``, serves it from a local HTTP server and opens it in
Debian's headless Chromium (``/usr/bin/chromium`` through ``/usr/bin/chromedriver``, without a
GPU) once per TensorFlow.js backend. Reported per backend: the seconds until the eight pads are
generated (weights fetched, G built, eight clips in one batch) and the milliseconds the page
shows for generating one clip (best of ``--clips``). The last line holds ``name=value`` pairs.

    python bench/web_page.py
    python bench/web_page.py --model_dim 16 --backends cpu
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
flags.DEFINE_integer("model_dim", 64, "Generator width d (64 in the paper).")
flags.DEFINE_list("backends", ["cpu", "webgl"], "TensorFlow.js backends to time.")
flags.DEFINE_integer("clips", 3, "Single-clip generations timed per backend.")
flags.DEFINE_integer("timeout_s", 600, "Longest wait for the pads of one page.")


def time_backend(driver, url, backend, latent_dim):
    """(seconds until the pads are ready, best ms for one clip) with ``backend``."""
    ready = open_ready(driver, url, backend, FLAGS.timeout_s)
    best = float("inf")
    for seed in range(FLAGS.clips):
        z = np.random.default_rng(seed).uniform(-1, 1, latent_dim).tolist()
        driver.execute_async_script(
            "const done = arguments[1]; window.wavegan.generate(arguments[0]).then(() => done())",
            z)
        best = min(best, driver.execute_script("return window.wavegan.lastGenerationMs"))
    return ready, best


def main(argv):
    del argv
    from random_run import make_train_dir

    from wavegan_tf.serving.web_export import export_web

    summary = {}
    with tempfile.TemporaryDirectory() as scratch:
        train_dir = os.path.join(scratch, "run")
        os.mkdir(train_dir)
        config = make_train_dir(train_dir, FLAGS.model_dim)
        site = export_web(train_dir, os.path.join(scratch, "site"))
        server = serve(site)
        driver = chromium(os.path.join(scratch, "profile"), FLAGS.timeout_s)
        try:
            for backend in FLAGS.backends:
                ready, ms = time_backend(driver, f"http://127.0.0.1:{server.server_port}/",
                                         backend, config.latent_dim)
                rtf = config.slice_len / config.sample_rate / (ms / 1000)
                print(f"d={FLAGS.model_dim} {backend:<6} pads ready in {ready:6.1f} s, one clip "
                      f"{ms:8.0f} ms ({rtf:.2f}x real time)", flush=True)
                summary[f"ready_s_{backend}"] = round(ready, 1)
                summary[f"clip_ms_{backend}"] = round(ms)
        finally:
            driver.quit()
            server.shutdown()
    print(" ".join(f"{k}={v}" for k, v in summary.items()))


if __name__ == "__main__":
    app.run(main)
