"""Training on several devices or machines with ``tf.distribute``.

A training loop uses it like this::

    strategy = make_strategy("mirrored")      # first: before any other TensorFlow op
    with strategy.scope():
        gan = config.build_gan()              # G, D, optimizers, RNG states: mirrored
    real = distributed_audio_dataset(strategy, data_dir, global_batch_size=config.batch_size,
                                     n_critic=config.n_critic, seed=seed)
    gan.fit(real, steps_per_epoch=..., ...)   # every worker runs the same fit
    manager = ChiefCheckpointManager(tf.train.Checkpoint(...), checkpoint_dir, strategy)
    manager.save(checkpoint_number=step)      # on every worker; only the chief keeps files

Batch size: ``global_batch_size`` is the number of examples of one critic (or generator) update
summed over all replicas; each replica processes ``global_batch_size / num_replicas_in_sync``.
The update is the one a single device would make with the global batch (see
:mod:`wavegan_tf.training.gan`), so a run's hyper-parameters keep their meaning on any number of devices.

Data: every worker builds its own input pipeline over its own files (``audio_dataset``'s
``num_shards``/``shard_index``) and splits each of its batches between its local replicas in
order. With one worker the replicas together see exactly the batches a single device would.
A labelled dataset (a conditional run's ``(audio, label)`` batches) is split alike, the labels
staying with their clips.

Checkpoints: mirrored variables are saved once, so a checkpoint written under any strategy
restores under any other (or none). Under ``MultiWorkerMirroredStrategy`` saving is a collective
operation: every worker must call save, and non-chief workers write to a temporary directory
that is deleted at once (:class:`ChiefCheckpointManager`). Restoring reads the chief's directory,
which must therefore be on storage every worker can read. Logs, previews and exports should be
written by the chief only (:func:`is_chief`).
"""

import shutil
import tempfile

import numpy as np
import tensorflow as tf

from wavegan_tf.training.feeding import critic_batches

STRATEGIES = ("default", "mirrored", "multi_worker", "tpu")


def make_strategy(name, tpu=None):
    """The ``tf.distribute.Strategy`` called ``name``.

    Args:
        name: "default" (one device, no distribution), "mirrored" (all local GPUs, or the CPU
            when there is none), "multi_worker" (``MultiWorkerMirroredStrategy``: the cluster and
            this worker's role come from the ``TF_CONFIG`` environment variable; without it, one
            worker) or "tpu".
        tpu: for "tpu" only: the TPU's name or ``grpc://`` address, or "local" on a TPU VM;
            None lets ``TPUClusterResolver`` find it (``TPU_NAME``, Cloud metadata).

    "multi_worker" and "tpu" must be created before any other TensorFlow op runs.

    Raises:
        ValueError: an unknown ``name``, or ``tpu`` given for a strategy other than "tpu".
    """
    if name not in STRATEGIES:
        raise ValueError(f"strategy must be one of {STRATEGIES}, got strategy={name!r}")
    if tpu is not None and name != "tpu":
        raise ValueError(f"a TPU address is only used by strategy 'tpu', got strategy={name!r} "
                         f"with tpu={tpu!r}")
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    if name == "multi_worker":
        return tf.distribute.MultiWorkerMirroredStrategy()
    resolver = tf.distribute.cluster_resolver.TPUClusterResolver(tpu=tpu)
    tf.config.experimental_connect_to_cluster(resolver)
    tf.tpu.experimental.initialize_tpu_system(resolver)
    return tf.distribute.TPUStrategy(resolver)


def replica_batch_size(strategy, global_batch_size):
    """Examples per replica for ``global_batch_size``; ValueError unless it divides evenly."""
    replicas = strategy.num_replicas_in_sync
    if isinstance(global_batch_size, bool) or int(global_batch_size) != global_batch_size \
            or global_batch_size < 1 or global_batch_size % replicas:
        raise ValueError(
            f"the global batch size must be a positive multiple of the {replicas} replicas in "
            f"sync, got batch_size={global_batch_size!r}")
    return int(global_batch_size) // replicas


def distribute_critic_batches(strategy, make_batches, global_batch_size, n_critic):
    """A distributed dataset feeding :class:`~wavegan_tf.training.gan.GANTrainer` on every replica.

    Each replica's element is ``[n_critic, global_batch_size / num_replicas, time, channels]``.
    Passing a plain ``critic_batches`` dataset to ``fit`` instead would let Keras split its
    leading axis, the critic updates, between replicas.

    Args:
        make_batches: ``make_batches(batch_size, num_shards, shard_index)`` -> a dataset of real
            batches ``[batch_size, time, channels]`` (endless, or long enough), reading the
            shard ``shard_index`` of ``num_shards`` of the data. It is called once per worker
            (input pipeline) with that worker's share of the global batch.
        global_batch_size: examples per critic update over all replicas.
        n_critic: critic updates per generator step.

    Raises:
        ValueError: ``global_batch_size`` is not a multiple of the number of replicas.
    """
    per_replica = replica_batch_size(strategy, global_batch_size)

    def dataset_fn(context):
        local_replicas = strategy.num_replicas_in_sync // context.num_input_pipelines
        batches = make_batches(per_replica * local_replicas, context.num_input_pipelines,
                               context.input_pipeline_id)
        stacks = critic_batches(batches, n_critic)
        return split_between_replicas(stacks, local_replicas).prefetch(tf.data.AUTOTUNE)

    return strategy.distribute_datasets_from_function(dataset_fn)


def split_between_replicas(stacks, replicas):
    """Each ``[n_critic, replicas * b, ...]`` element as ``replicas`` elements
    ``[n_critic, b, ...]``, in order: rows ``[r * b, (r + 1) * b)`` of every critic batch go to
    the ``r``-th element, which the strategy hands to the worker's ``r``-th replica. Each part
    of an ``(audio, label)`` element is split the same way.
    """
    if replicas == 1:
        return stacks

    def split(stack):
        return tf.stack(tf.split(stack, replicas, axis=1))

    def split_element(*element):
        # An (audio, label) element arrives as two arguments; each part is split alike.
        return tf.nest.map_structure(split, element if len(element) > 1 else element[0])

    return stacks.map(split_element).unbatch()


def distributed_audio_dataset(strategy, data_dir, global_batch_size, n_critic, seed=None,
                              transform=None, **audio_options):
    """:func:`distribute_critic_batches` over :func:`wavegan_tf.audio.data.audio_dataset`.

    Worker ``i`` of ``n`` reads the files ``i::n`` of ``data_dir`` with the seed
    :func:`shard_seed` ``(seed, i)``; ``audio_options`` (slice_len, sample_rate, num_channels,
    cache, ...) go to ``audio_dataset`` unchanged. ``transform`` (dataset -> dataset), if given,
    is applied to each worker's batches before they are grouped (e.g. SpecGAN's spectrograms).
    """
    from wavegan_tf.audio.data import audio_dataset

    def make_batches(batch_size, num_shards, shard_index):
        batches = audio_dataset(data_dir, batch_size=batch_size, num_shards=num_shards,
                                shard_index=shard_index, seed=shard_seed(seed, shard_index),
                                **audio_options)
        return batches if transform is None else transform(batches)

    return distribute_critic_batches(strategy, make_batches, global_batch_size, n_critic)


def shard_seed(seed, shard_index):
    """The data seed of shard ``shard_index``: ``seed`` itself for shard 0 (so one worker reads
    what a single-device run reads), a seed derived from both for the others; None stays None."""
    if seed is None or shard_index == 0:
        return seed
    return int(np.random.SeedSequence([int(seed), int(shard_index)]).generate_state(1)[0])


def is_chief(strategy):
    """True on the one worker that writes checkpoints, logs, previews and exports.

    That is the "chief" task if the cluster has one, else worker 0. A strategy without a
    cluster (default, mirrored, TPU: one Python process) is always its own chief.
    """
    resolver = strategy.cluster_resolver
    if resolver is None or isinstance(strategy, tf.distribute.TPUStrategy):
        return True
    task_type, task_id = resolver.task_type, resolver.task_id
    if not task_type or task_type == "chief":
        return True
    has_chief = "chief" in resolver.cluster_spec().jobs
    return task_type == "worker" and task_id == 0 and not has_chief


class ChiefCheckpointManager:
    """A ``tf.train.CheckpointManager`` whose files only the chief keeps.

    Every worker must call :meth:`save` at the same steps (under multi-worker strategies saving
    reads mirrored variables collectively); the chief writes into ``directory``, the others
    into a fresh temporary directory that is deleted right after. :attr:`latest_checkpoint`
    always names the chief's newest checkpoint, for every worker to restore.

    Args:
        checkpoint: the ``tf.train.Checkpoint`` to save.
        directory: the run's checkpoint directory (shared storage for multi-worker runs).
        strategy: the run's strategy (see :func:`is_chief`).
        **manager_options: ``max_to_keep``, ``checkpoint_name``, ... of
            ``tf.train.CheckpointManager``.
    """

    def __init__(self, checkpoint, directory, strategy, **manager_options):
        self.checkpoint = checkpoint
        self.directory = directory
        self.chief = is_chief(strategy)
        self._manager = None
        if self.chief:
            self._manager = tf.train.CheckpointManager(checkpoint, directory, **manager_options)

    @property
    def latest_checkpoint(self):
        """Path prefix of the chief's newest checkpoint, or None."""
        return tf.train.latest_checkpoint(self.directory)

    def save(self, checkpoint_number=None):
        """Saves on every worker; returns the path on the chief and None elsewhere."""
        if self.chief:
            return self._manager.save(checkpoint_number=checkpoint_number)
        scratch = tempfile.mkdtemp(prefix="wavegan_tf_worker_")
        try:
            tf.train.CheckpointManager(self.checkpoint, scratch, max_to_keep=1).save(
                checkpoint_number=checkpoint_number)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
        return None
