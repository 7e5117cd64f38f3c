"""Generator weight averaging: an exponential moving average of G's weights in a copy of G
that is never trained, the G to listen to (off in the paper).

After the n-th generator update ``average = decay * average + (1 - decay) * weight`` with
``decay = min(ema_decay, (1 + n) / (10 + n))``, the warm-up of
``tf.train.ExponentialMovingAverage``, so that a short run's average is not dominated by the
random initial weights. Non-trainable weights (batch-norm statistics) are copied.
"""

import keras
import tensorflow as tf
from keras import ops


def check_ema_decay(ema_decay):
    """ValueError naming ``ema_decay`` unless it is 0 (off) or in (0, 1)."""
    if not 0.0 <= ema_decay < 1.0:
        raise ValueError(f"ema_decay must be 0 (no weight averaging) or in (0, 1), e.g. 0.999; "
                         f"got ema_decay={ema_decay!r}")


def untrained_copy(generator):
    """A copy of ``generator`` with its weights, marked non-trainable (the weight average)."""
    copy = keras.models.clone_model(generator)
    for average, weight in zip(copy.weights, generator.weights):
        average.assign(weight)
    copy.trainable = False
    return copy


def average_decay(ema_decay, updates):
    """The averaging decay after ``updates`` generator updates."""
    updates = ops.cast(updates, "float32")
    return ops.minimum(ema_decay, (1.0 + updates) / (10.0 + updates))


def update_average(ema_generator, generator, ema_decay, updates):
    """Moves ``ema_generator`` towards ``generator`` after its ``updates``-th update. Under a
    distribution strategy every device's copy of the (mirrored) average moves towards that
    device's copy of G, which holds the same values, so the copies stay equal."""
    pairs = [(average.value, weight.value, weight.trainable) for average, weight in
             zip(ema_generator.weights, generator.weights)]

    def move(average, weight, updates):
        decay = ops.cast(average_decay(ema_decay, updates), average.dtype)
        return average.assign(decay * average + (1.0 - decay) * weight)

    def copy(average, weight, updates):
        return average.assign(weight)

    def update_all(strategy, pairs, updates):
        for average, weight, trainable in pairs:
            strategy.extended.update(average, move if trainable else copy,
                                     args=(weight, updates), group=False)

    tf.__internal__.distribute.interim.maybe_merge_call(
        update_all, tf.distribute.get_strategy(), pairs, updates)
