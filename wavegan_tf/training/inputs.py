"""What a run trains on and where: its ``tf.distribute`` strategy, its batches of real clips
(with labels for a conditional run) and, for SpecGAN, the spectrogram moments that turn them
into what D reads.

SpecGAN's moments come from one pass over the data when a run starts (every window in file
order, the last zero-padded), are saved in the training directory and read back on resume, so
the GAN trainer trains SpecGAN unchanged.
"""

import dataclasses
import os

import numpy as np
import tensorflow as tf
from absl import logging

from wavegan_tf.audio.data import audio_dataset, check_class_names
from wavegan_tf.audio.spectrogram import audio_to_spectrogram, compute_moments
from wavegan_tf.training import checkpoints
from wavegan_tf.training.distribute import (
    distributed_audio_dataset,
    make_strategy,
    replica_batch_size,
)
from wavegan_tf.training.feeding import critic_batches
from wavegan_tf.training.saver import error_reason


def start_strategy(options):
    """The strategy the TrainingOptions name; a TPU that cannot be reached is a ValueError."""
    try:
        return make_strategy(options.strategy, options.tpu)
    except (tf.errors.OpError, RuntimeError) as err:
        raise ValueError(f"cannot start strategy {options.strategy!r}"
                         f"{f' on tpu={options.tpu!r}' if options.tpu else ''}: "
                         f"{error_reason(err) if isinstance(err, tf.errors.OpError) else err}"
                         ) from err


def check_micro_batches(config, options, strategy):
    """ValueError unless ``micro_batches`` divides the batch of each replica."""
    per_replica = replica_batch_size(strategy, config.batch_size)
    if per_replica % options.micro_batches:
        raise ValueError(
            f"micro_batches={options.micro_batches} must divide the batch of each replica: "
            f"batch_size={config.batch_size} over {strategy.num_replicas_in_sync} replica(s) "
            f"is {per_replica} examples per replica")


def with_class_names(config, data_dir):
    """``config`` with the classes of ``data_dir`` (its sorted class subfolders) when it has
    none yet; a resumed run's saved classes are checked to be subfolders of ``data_dir``."""
    class_names = check_class_names(data_dir, config.class_names)
    logging.info("Conditional run: %d classes %s", len(class_names), class_names)
    return dataclasses.replace(config, class_names=class_names)


def data_seed(seed, step):
    """Seed of the data stream for a run with ``seed`` starting at ``step``: a resumed run does
    not replay the batches the run began with."""
    return int(np.random.SeedSequence([int(seed), int(step)]).generate_state(1)[0])


def training_data(config, data_dir, seed, strategy, moments, chief):
    """(what ``fit`` reads, a few real clips for the previews, None off the chief).

    Under a distribution strategy other than the default one ``fit`` reads a distributed
    dataset of critic stacks (:func:`wavegan_tf.training.distribute.distributed_audio_dataset`)
    and the real clips come from a plain pipeline built on the chief only.
    """
    if strategy is tf.distribute.get_strategy():
        batches = audio_batches(config, data_dir, seed)
        return critic_batches(model_inputs(batches, moments), config.n_critic), \
            first_audio(batches)
    real = distributed_audio_dataset(
        strategy, data_dir, global_batch_size=config.batch_size, n_critic=config.n_critic,
        seed=seed, transform=lambda batches: model_inputs(batches, moments),
        slice_len=config.slice_len, sample_rate=config.sample_rate,
        num_channels=config.num_channels, **label_options(config))
    sample = first_audio(audio_batches(config, data_dir, seed)) if chief else None
    return real, sample


def audio_batches(config, data_dir, seed):
    """The endless dataset of real batches ``[batch, slice_len, channels]`` for ``config``."""
    return audio_dataset(data_dir, slice_len=config.slice_len, sample_rate=config.sample_rate,
                         num_channels=config.num_channels, batch_size=config.batch_size,
                         seed=seed, **label_options(config))


def model_inputs(batches, moments):
    """The real batches as D takes them: audio, or (SpecGAN, with ``moments``) spectrograms."""
    if moments is None:
        return batches
    return batches.map(lambda audio: audio_to_spectrogram(audio, moments.mean, moments.std),
                       num_parallel_calls=tf.data.AUTOTUNE)


def first_audio(batches):
    """The audio of the first batch (without its labels, for a labelled dataset)."""
    first = next(iter(batches))
    return (first[0] if isinstance(first, tuple) else first).numpy()


def label_options(config):
    """``audio_dataset`` arguments that make it yield the labels of a conditional run."""
    if not config.conditional:
        return {}
    return dict(labels=True, class_names=config.class_names)


def spectrogram_moments(train_dir, config, data_dir, resuming, chief):
    """The SpecGAN run's spectrogram moments: read back when saved, else computed from the
    data and saved (by the chief). A resumed run without them is an error: new moments would
    change what its checkpoints were trained on."""
    path = checkpoints.moments_path(train_dir)
    if os.path.exists(path) or resuming:
        return checkpoints.load_moments(train_dir)
    moments = data_moments(config, data_dir)
    logging.info("Spectrogram moments from %d frames of %s", moments.num_frames, data_dir)
    if chief:
        moments.save(path)
    return moments


def data_moments(config, data_dir):
    """SpecGAN's spectrogram moments of ``data_dir``: over every window of the data in file
    order, the last zero-padded."""
    windows = audio_dataset(data_dir, slice_len=config.slice_len, sample_rate=config.sample_rate,
                            num_channels=config.num_channels, batch_size=1, pad_end=True,
                            shuffle=False, repeat=False, seed=config.seed)
    return compute_moments(windows.batch(64))
