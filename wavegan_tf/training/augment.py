"""Differentiable augmentation of the clips D sees (DiffAugment for audio), for small datasets.

With few training clips D soon memorises them and its gradients stop guiding G. DiffAugment
(Zhao et al., NeurIPS 2020) and ADA (Karras et al., NeurIPS 2020) counter this by showing D only
randomly transformed clips, real and generated alike, drawn from the same distribution of
transforms, in every D update and in the G update. The transforms are differentiable, so G's
gradient passes through them, and because G's clips are transformed exactly like the real ones
G is not pushed to produce transformed-looking audio.

The policies, applied in this order to ``audio`` ``[batch, time, channels]``, each example with
its own random draw:

* ``gain``: multiply the clip by a gain uniform in dB over [-:data:`GAIN_DB`, +GAIN_DB];
* ``shift``: delay or advance the clip by a whole number of samples, uniform over
  [-:data:`SHIFT_FRACTION` * time, +SHIFT_FRACTION * time], filling the vacated samples with
  zeros (not wrapping around: a wrapped clip would end in a click);
* ``mask``: zero a window of :data:`MASK_FRACTION` * time consecutive samples at a uniform
  position (a time mask, the audio form of cutout).

The random numbers are drawn as :func:`sample_draws` (one row of :data:`NUM_DRAWS` uniforms per
example) and turned into transforms by :func:`apply`, so a caller can draw for a whole batch and
apply to parts of it (micro-batches, replicas) with the same result.
"""

import math

import keras
import tensorflow as tf

POLICIES = ("gain", "shift", "mask")
# One uniform per policy and example, in the order of POLICIES.
NUM_DRAWS = len(POLICIES)
GAIN_DB = 6.0
SHIFT_FRACTION = 1.0 / 8.0
MASK_FRACTION = 1.0 / 4.0


def check_policies(policies):
    """``policies`` (a list or a comma-separated string) as a tuple in :data:`POLICIES` order.

    ValueError naming the ``augment`` setting for unknown or repeated names.
    """
    if isinstance(policies, str):
        policies = [p for p in policies.split(",") if p]
    names = [str(p).strip() for p in (policies or ())]
    unknown = [p for p in names if p not in POLICIES]
    if unknown or len(set(names)) != len(names):
        problem = f"unknown {unknown}" if unknown else "a policy named twice"
        raise ValueError(f"augment must list distinct policies out of {list(POLICIES)}, got "
                         f"augment={list(names)!r} ({problem})")
    return tuple(p for p in POLICIES if p in names)


def sample_draws(batch_size, seed_generator):
    """Uniforms ``[batch_size, NUM_DRAWS]`` in [0, 1) that fix every example's transforms."""
    return keras.random.uniform((batch_size, NUM_DRAWS), 0.0, 1.0, seed=seed_generator)


def apply(audio, draws, policies):
    """``audio`` ``[batch, time, channels]`` transformed by ``policies`` with the given draws.

    Differentiable with respect to ``audio``; no policies return ``audio`` itself.
    """
    if not policies:
        return audio
    draws = tf.cast(draws, audio.dtype)
    for index, policy in enumerate(POLICIES):
        if policy in policies:
            audio = _TRANSFORMS[policy](audio, draws[:, index])
    return audio


def max_shift(length):
    """The largest shift in samples of a clip of ``length`` samples."""
    return int(math.floor(SHIFT_FRACTION * length))


def mask_length(length):
    """The samples zeroed by the mask in a clip of ``length`` samples."""
    return int(math.floor(MASK_FRACTION * length))


def gains(draws):
    """Linear gains of uniforms ``draws``: 10 ** (dB / 20), dB uniform in [-GAIN_DB, GAIN_DB]."""
    return tf.pow(tf.constant(10.0, draws.dtype), (2.0 * draws - 1.0) * GAIN_DB / 20.0)


def shifts(draws, length):
    """Integer shifts of uniforms ``draws``, uniform over [-max_shift, max_shift]."""
    limit = max_shift(length)
    offset = tf.floor(tf.cast(draws, tf.float32) * (2 * limit + 1))
    return tf.cast(tf.minimum(offset, 2 * limit), tf.int32) - limit


def mask_starts(draws, length):
    """First masked sample of uniforms ``draws``, uniform over [0, length - mask_length]."""
    positions = length - mask_length(length) + 1
    start = tf.floor(tf.cast(draws, tf.float32) * positions)
    return tf.cast(tf.minimum(start, positions - 1), tf.int32)


def _gain(audio, draws):
    return audio * gains(draws)[:, None, None]


def _shift(audio, draws):
    """out[t] = audio[t - shift] where that index exists, else 0."""
    length = int(audio.shape[1])
    source = tf.range(length)[None, :] - shifts(draws, length)[:, None]
    valid = (source >= 0) & (source < length)
    moved = tf.gather(audio, tf.clip_by_value(source, 0, length - 1), axis=1, batch_dims=1)
    return moved * tf.cast(valid, audio.dtype)[:, :, None]


def _mask(audio, draws):
    length = int(audio.shape[1])
    start = mask_starts(draws, length)[:, None]
    t = tf.range(length)[None, :]
    keep = (t < start) | (t >= start + mask_length(length))
    return audio * tf.cast(keep, audio.dtype)[:, :, None]


_TRANSFORMS = {"gain": _gain, "shift": _shift, "mask": _mask}
