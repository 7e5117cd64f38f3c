"""Checks of the values in a TF1 checkpoint before :mod:`wavegan_tf.serving.tf1_checkpoint`
converts them: weights and optimizer slots must be finite floats (a slot as many as its
variable), the step one integer in range; otherwise a ValueError names the variable and the
checkpoint."""

import numpy as np

# The most steps a checkpoint may claim (D's optimizer counts n_critic times as many).
MAX_STEP = 2**40


def values_problem(value):
    """What makes ``value`` unusable as weights (not floats, or not finite), or None."""
    value = np.asarray(value)
    if not np.issubdtype(value.dtype, np.floating):
        return f"holds {value.dtype} values, not floats"
    if not np.all(np.isfinite(value)):
        return "holds NaN or infinite values"
    return None


def checked_step(tensors, prefix, slot_suffixes):
    """The checkpoint's ``global_step`` (0 when it has none) after checking the values of every
    ``G/`` and ``D/`` tensor of ``tensors`` (a slot's name ends in one of ``slot_suffixes``);
    ValueError naming the tensor and ``prefix`` for the first that cannot be used."""
    for name in sorted(tensors):
        if not name.startswith(("G/", "D/")):
            continue
        base, suffix = name.rsplit("/", 1)
        problem = values_problem(tensors[name])
        if problem is None and suffix in slot_suffixes and base in tensors and \
                np.size(tensors[name]) != np.size(tensors[base]):
            problem = f"has shape {list(np.shape(tensors[name]))}, not its variable's " \
                      f"{list(np.shape(tensors[base]))}"
        if problem:
            raise ValueError(f"{name!r} of checkpoint {prefix!r} {problem}: the checkpoint is "
                             "damaged or not the original's")
    if "global_step" not in tensors:
        return 0
    value = np.asarray(tensors["global_step"])
    if value.shape != () or not np.issubdtype(value.dtype, np.integer) or \
            not 0 <= value <= MAX_STEP:
        raise ValueError(f"checkpoint {prefix!r} has a global_step of {value.dtype} "
                         f"{value.tolist()!r}, not one integer in [0, {MAX_STEP}]: it is "
                         "damaged")
    return int(value)
