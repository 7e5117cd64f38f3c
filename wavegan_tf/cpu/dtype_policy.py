"""Scoping Keras' global dtype policy: models built inside take it, the old one comes back after.

Keras reads the global policy when a layer is created, so building G or D under
``global_dtype_policy("mixed_bfloat16")`` gives bfloat16 compute with float32 weights. Training,
export and the best-generator export each need a policy for the models they build without
leaking it into the rest of the process.
"""

import contextlib

import keras


@contextlib.contextmanager
def global_dtype_policy(name):
    """Sets the Keras global dtype policy ``name`` (e.g. "float32", "mixed_bfloat16") for the
    ``with`` block, then restores the previous one, also when the block raises."""
    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy(name)
    try:
        yield
    finally:
        keras.mixed_precision.set_global_policy(previous)
