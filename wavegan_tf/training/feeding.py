"""Feeding the critic: every element of the dataset given to ``fit`` holds the real examples of
all ``n_critic`` critic updates of one generator step, as ``[n_critic, batch, ...]`` (see
:func:`critic_batches`) or ``[n_critic * batch, ...]``, split in order; conditional runs give
``(audio, label)`` pairs whose labels match the audio's leading axes. The trainer only assumes
that G's outputs and the real examples are what D takes: SpecGAN feeds spectrograms
``[..., frames, bins, 1]``, one more axis per example than audio.
"""

from keras import ops


def critic_batches(dataset, n_critic):
    """Groups a dataset of ``[batch, time, channels]`` batches into ``n_critic``-stacks.

    The result feeds :class:`wavegan_tf.training.gan.GANTrainer` so that every critic update
    sees its own real batch. A dataset of ``(audio, label)`` batches gives ``(audio, label)``
    stacks, ``[n_critic, batch, time, channels]`` and ``[n_critic, batch]``.
    """
    return dataset.batch(n_critic, drop_remainder=True)


def example_rank(discriminator):
    """Axes of one example D takes (its first input without the batch axis); 2 (audio) for a
    model without a known input."""
    inputs = getattr(discriminator, "inputs", None)
    return len(inputs[0].shape) - 1 if inputs else 2


def critic_stacks(data, n_critic, rank, num_classes):
    """One dataset element as its real examples ``[n_critic, batch, ...]`` (``rank`` axes per
    example) and labels ``[n_critic, batch]`` (None when ``num_classes`` is 0): row ``i``
    feeds critic update ``i``. A flat element is reshaped, which splits it in order without a
    copy; ValueError naming the expected layout otherwise."""
    if num_classes:
        audio, labels = _audio_and_labels(data, num_classes)
    else:
        audio, labels = (data[0] if isinstance(data, (tuple, list)) else data), None
    _check_audio_shape(audio, n_critic, rank)
    if labels is not None:
        expected = len(audio.shape) - rank
        if len(labels.shape) != expected or (
                labels.shape[0] is not None and audio.shape[0] is not None
                and labels.shape[0] != audio.shape[0]):
            raise ValueError(
                f"labels must match the audio's leading axes "
                f"({tuple(audio.shape[:expected])}), got shape {tuple(labels.shape)} for "
                f"audio of shape {tuple(audio.shape)}")
        labels = ops.reshape(ops.cast(labels, "int32"), (n_critic, -1))
    if len(audio.shape) == rank + 1:
        audio = ops.reshape(audio, (n_critic, -1) + tuple(audio.shape[1:]))
    return audio, labels


def _check_audio_shape(audio, n_critic, rank):
    """ValueError unless ``audio`` is one of the two element layouts for ``n_critic``."""
    if len(audio.shape) == rank + 2:
        if audio.shape[0] is not None and audio.shape[0] != n_critic:
            raise ValueError(
                f"a [n_critic, batch, time, channels] element needs n_critic={n_critic} "
                f"batches, got shape {tuple(audio.shape)}")
        return
    if len(audio.shape) != rank + 1:
        raise ValueError(
            f"real examples of {rank} axes (audio: time, channels) must come "
            "as [n_critic, batch, time, channels] or [n_critic * batch, time, channels], "
            f"got shape {tuple(audio.shape)}")
    if audio.shape[0] is not None and audio.shape[0] % n_critic:
        raise ValueError(
            f"a [n_critic * batch, time, channels] element needs a leading size divisible "
            f"by n_critic={n_critic}, got shape {tuple(audio.shape)}")


def _audio_and_labels(data, num_classes):
    if not isinstance(data, (tuple, list)) or len(data) < 2 or data[1] is None:
        raise ValueError(
            f"a conditional WaveGAN (num_classes={num_classes}) needs (audio, label) "
            "dataset elements, e.g. critic_batches(audio_dataset(..., labels=True), "
            "n_critic); got audio without labels")
    return data[0], data[1]
