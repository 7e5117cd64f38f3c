"""Ordering and splitting a training step's passes: control dependencies that keep independent
passes from running at once (each would hold its activations), equal row splits for
micro-batches, gradient sums the graph optimizer cannot merge, and the seed states of
phase-shuffle layers, put back so that every micro-batch draws the shifts of the whole batch.
"""

import contextlib

import keras
import tensorflow as tf
from keras import ops


def after(tensors, value):
    """``value`` as an identity that runs only after ``tensors`` exist (none: ``value``)."""
    if not tensors:
        return value
    with tf.control_dependencies(tensors):
        return tf.identity(value)


def after_context(tensors):
    """A context in which every new op runs only after ``tensors`` exist (none: no effect)."""
    return tf.control_dependencies(tensors) if tensors else contextlib.nullcontext()


def split_rows(inputs, parts):
    """``parts`` tuples of equal row slices of ``inputs``; None entries stay None."""
    if parts == 1:
        return [tuple(inputs)]
    columns = [[None] * parts if x is None else ops.split(x, parts, axis=0) for x in inputs]
    return list(zip(*columns))


def add_gradients(total, grads):
    """Elementwise sum of two gradient lists; None (no gradient) counts as zero.

    Each sum ends in a ``Snapshot`` (no copy: it takes over the sum's buffer) so that the
    graph optimizer cannot merge a critic update's chain of sums into one ``AddN``: its memory
    optimizer turns such an ``AddN`` into an accumulator whose zero initial value becomes a
    constant of the graph, held for the whole run (92 MiB at d=64)."""
    if total is None:
        return list(grads)
    summed = []
    for a, b in zip(total, grads):
        if a is None or b is None:
            summed.append(b if a is None else a)
        else:
            summed.append(tf.raw_ops.Snapshot(
                input=tf.convert_to_tensor(a) + tf.convert_to_tensor(b)))
    return summed


def seed_states(models):
    """``(seed_generator, copy of its state)`` for every seeded layer of ``models``.

    A real copy: a plain read may share the variable's buffer, which the next draw overwrites.
    """
    states = []
    for model in models:
        for layer in all_layers(model):
            generator = getattr(layer, "seed_generator", None)
            if isinstance(generator, keras.random.SeedGenerator):
                state = tf.raw_ops.DeepCopy(x=ops.convert_to_tensor(generator.state))
                states.append((generator, state))
    return states


def all_layers(model):
    for layer in getattr(model, "layers", ()):
        yield layer
        yield from all_layers(layer)
