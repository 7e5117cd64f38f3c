"""Helpers shared by several test modules (imported as ``support``; pytest puts tests/ on the path)."""

import os
import socket
import textwrap


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


# Runs training.train(TRAIN_DIR, CONFIG_JSON, OPTIONS_JSON) under a MirroredStrategy over two
# logical CPU devices (argv 1-3) and prints "RESULT" and a JSON summary.
MIRRORED_SCRIPT = textwrap.dedent("""
    import json, sys
    import tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(
        cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    from wavegan_tf import training
    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    result = training.train(sys.argv[1], json.loads(sys.argv[2]), json.loads(sys.argv[3]),
                            verbose=0, strategy=strategy)
    print("RESULT", json.dumps({"replicas": strategy.num_replicas_in_sync,
                                "step": result.step, "export": result.export_dir}))
""")
