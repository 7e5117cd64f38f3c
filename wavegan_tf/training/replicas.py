"""A training step across replicas and precisions: each replica's share of the loss and of the
random draws, the metrics layout multi-worker fit needs, and loss scaling under float16.
"""

import keras
import tensorflow as tf


def replica_share(loss):
    """``loss`` divided by the number of replicas in sync (unchanged on a single device).

    Keras optimizers all-reduce gradients with a sum, so each replica differentiates its share
    of the global mean; the sum is then the gradient of the global-batch mean.
    """
    replicas = tf.distribute.get_strategy().num_replicas_in_sync
    return loss if replicas == 1 else loss / replicas


def replica_rows(batch_size, draw):
    """``draw(batch_size)`` on one device; inside a replica, this replica's rows of a draw for
    the global batch.

    ``draw(n)`` must give the same ``n`` rows on every replica (a seed generator whose state is
    mirrored), so replica ``r`` of ``R`` gets rows ``[r * batch_size, (r + 1) * batch_size)``
    of the global draw: different rows on every replica, and the same values as one device
    drawing for the whole global batch.
    """
    context = tf.distribute.get_replica_context()
    if context is None or context.num_replicas_in_sync == 1:
        return draw(batch_size)
    rows = draw(batch_size * context.num_replicas_in_sync)
    start = context.replica_id_in_sync_group * batch_size
    return rows[start:start + batch_size]


def fit_reduces_along_axis_0(strategy):
    """Whether Keras's fit averages train_step's outputs with ``strategy.reduce("MEAN", value,
    axis=0)``, which rejects scalars (tensorflow/tensorflow#72388): multi-worker
    ``MultiWorkerMirroredStrategy``, by the test Keras itself makes. The metrics are then
    returned as ``[1]`` vectors, which that reduction turns into the scalar global means.
    """
    if not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        return False
    return bool(strategy.extended._in_multi_worker_mode())


def with_loss_scaling(optimizer):
    """Wraps ``optimizer`` in a LossScaleOptimizer under a float16 policy, else returns it."""
    float16 = keras.mixed_precision.global_policy().compute_dtype == "float16"
    if float16 and not isinstance(optimizer, keras.optimizers.LossScaleOptimizer):
        return keras.optimizers.LossScaleOptimizer(optimizer)
    return optimizer
