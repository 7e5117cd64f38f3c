"""Helpers shared by several test modules (imported as ``support``; pytest puts tests/ on the path)."""

import os
import socket
import subprocess
import sys
import textwrap

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run_bench(script, *flags, timeout=600, unset=()):
    """Runs ``python bench/<script> <flags>`` from the repository root with TensorFlow's
    start-up notices hidden and the environment variables named in ``unset`` removed; returns
    the CompletedProcess (text output captured)."""
    env = {k: v for k, v in os.environ.items() if k not in unset}
    return subprocess.run([sys.executable, os.path.join("bench", script), *flags],
                          capture_output=True, text=True, cwd=ROOT, timeout=timeout,
                          env={**env, "TF_CPP_MIN_LOG_LEVEL": "2"})


def free_ports(count):
    """``count`` distinct loopback TCP ports that were free a moment ago."""
    sockets = [socket.socket() for _ in range(count)]
    for sock in sockets:
        sock.bind(("127.0.0.1", 0))
    ports = [sock.getsockname()[1] for sock in sockets]
    for sock in sockets:
        sock.close()
    return ports


def snapshot(directory):
    """Relative path -> bytes of every file under ``directory``."""
    files = {}
    for root, _, names in os.walk(directory):
        for name in names:
            path = os.path.join(root, name)
            with open(path, "rb") as f:
                files[os.path.relpath(path, directory)] = f.read()
    return files


def make_loud_train_dir(directory, *, latent_dim=8, sample_rate=8000, model_dim=2,
                        class_names=None, step=7, **architecture):
    """A tiny training directory with one checkpoint at ``step``, whose G has its kernels
    scaled up so that its audio spans most of [-1, 1]: a fresh tiny G is nearly silent, which
    would let a wrong export pass a comparison with an absolute tolerance. ``architecture``
    sets other config fields (``upsample``, ``batchnorm``, ``post_proc_filt_len``); batch
    norm statistics and scales get random values so that each of them matters."""
    import numpy as np
    import tensorflow as tf

    from wavegan_tf.training import checkpoints
    from wavegan_tf.training.config import GANConfig

    config = GANConfig(model_dim=model_dim, latent_dim=latent_dim, sample_rate=sample_rate,
                           conditional=class_names is not None, class_names=class_names,
                           **architecture)
    os.makedirs(directory, exist_ok=True)
    config.save(str(directory))
    gan = config.build_gan()
    rng = np.random.default_rng(0)
    for variable in gan.generator.weights:
        if variable.name == "kernel":
            variable.assign(variable * 3.0)
        elif variable.name in ("gamma", "moving_variance"):
            variable.assign(rng.uniform(0.5, 1.5, variable.shape))
        elif variable.name in ("beta", "moving_mean"):
            variable.assign(rng.uniform(-0.3, 0.3, variable.shape))
    tf.train.CheckpointManager(
        checkpoints.make_checkpoint(gan, tf.Variable(step, dtype=tf.int64)),
        checkpoints.checkpoint_dir(str(directory)), max_to_keep=1).save()
    return str(directory)


def run_generate_main(*args):
    """Runs generate.py's ``main`` in this process with the command-line flags ``args``;
    returns its exit status. The flags are reset afterwards."""
    from absl import flags

    from wavegan_tf.cli import generate

    flags.FLAGS(["generate.py", *args])
    try:
        return generate.main(["generate.py"])
    finally:
        flags.FLAGS.unparse_flags()


# Runs runs.train(TRAIN_DIR, CONFIG_JSON, OPTIONS_JSON) under a MirroredStrategy over two
# logical CPU devices (argv 1-3) and prints "RESULT" and a JSON summary.
MIRRORED_SCRIPT = textwrap.dedent("""
    import json, sys
    import tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(
        cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    from wavegan_tf import runs
    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    result = runs.train(sys.argv[1], json.loads(sys.argv[2]), json.loads(sys.argv[3]),
                        verbose=0, strategy=strategy)
    print("RESULT", json.dumps({"replicas": strategy.num_replicas_in_sync,
                                "step": result.step, "export": result.export_dir}))
""")


def tiny_classifier(directory):
    """A small untrained three-class classifier saved in ``directory``: enough to produce
    scores that change; returns its path."""
    import keras

    from wavegan_tf.eval import classifier as classifier_lib

    keras.utils.set_random_seed(1)
    model = classifier_lib.build_classifier(3, slice_len=16384, filters=4)
    path = os.path.join(str(directory), "classifier.keras")
    classifier_lib.save_classifier(model, path, ["a", "b", "c"])
    return path
