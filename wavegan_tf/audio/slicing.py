"""Window arithmetic: where the training slices of one audio file start.

Pure numpy, no I/O, so the rules can be property-tested and shared by the data pipeline.

The rule, for a file of ``n`` samples, slice length ``L`` and hop ``h``
(``h = max(1, round(L * (1 - overlap_ratio)))``):

* A file shorter than one slice (``n < L``) gives exactly one window starting at 0; the missing
  tail is zero-padded. Its offset is always 0.
* Otherwise a pass starts at ``offset``, drawn uniformly from ``[0, max_offset(n, L, h))`` where
  ``max_offset = min(h, n - L + 1)``. The offset varies the phase of the windows between passes
  (as in the original WaveGAN loader) but never moves the first window past the end of the
  file, so every file contributes at least one whole window in every pass.
* Windows start at ``offset + k * h`` for ``k = 0 .. count - 1`` where, with ``m = n - offset``,

  - ``pad_end=False``: ``count = 1 + (m - L) // h`` (whole windows only; the tail is dropped);
  - ``pad_end=True``: ``count = 1 + ceil((m - L) / h)`` -- the fewest windows that cover every
    sample from ``offset`` on; the last window is zero-padded past the end of the file. Unlike
    ``tf.signal.frame(pad_end=True)`` no window starts inside the last window's span, so no
    window is mostly padding just because the hop is small.

* ``first_slice=True`` keeps only the first window of each file, at offset 0.

A window never contains an invented sample: it equals the same stretch of the signal followed by
zeros (:func:`pad_signal`).
"""

import numpy as np


def hop_length(slice_len, overlap_ratio=0.0):
    """Samples between consecutive window starts for ``overlap_ratio`` in ``[0, 1)``."""
    _check_slice_len(slice_len)
    if not 0.0 <= overlap_ratio < 1.0:
        raise ValueError(f"overlap_ratio must be in [0, 1), got {overlap_ratio!r}")
    return max(1, int(round(slice_len * (1.0 - overlap_ratio))))


def max_offset(num_samples, slice_len, hop):
    """Exclusive upper bound of the random start offset of a file (see module docstring)."""
    num_samples = np.asarray(num_samples, dtype=np.int64)
    return np.maximum(1, np.minimum(hop, num_samples - slice_len + 1))


def num_windows(num_samples, slice_len, hop, pad_end=False, first_slice=False, offset=0):
    """Number of windows of a file (vectorised over ``num_samples`` and ``offset``)."""
    num_samples = np.asarray(num_samples, dtype=np.int64)
    offset = np.asarray(offset, dtype=np.int64)
    if first_slice:
        return np.ones_like(num_samples + offset)
    remaining = np.maximum(num_samples - offset - slice_len, 0)
    steps = -(-remaining // hop) if pad_end else remaining // hop
    return 1 + steps


def window_starts(num_samples, slice_len, overlap_ratio=0.0, pad_end=False, first_slice=False,
                  offset=0):
    """Start indices of the windows of one file of ``num_samples`` samples.

    ``offset`` must lie in ``[0, max_offset)``; it is ignored (treated as 0) when
    ``first_slice`` is set.
    """
    _check_num_samples(num_samples)
    hop = hop_length(slice_len, overlap_ratio)
    if first_slice:
        offset = 0
    limit = int(max_offset(num_samples, slice_len, hop))
    if not 0 <= offset < limit:
        raise ValueError(f"offset must be in [0, {limit}) for {num_samples} samples, slice_len "
                         f"{slice_len} and hop {hop}, got {offset!r}")
    count = int(num_windows(num_samples, slice_len, hop, pad_end, first_slice, offset))
    return offset + hop * np.arange(count, dtype=np.int64)


def padded_length(num_samples, slice_len, starts):
    """Length of the signal once zero-padded so that every window fits inside it."""
    return max(int(num_samples), int(starts[-1]) + slice_len) if len(starts) else int(num_samples)


def pad_signal(signal, slice_len, starts):
    """``signal`` (samples along axis 0) followed by the zeros the windows ``starts`` need."""
    signal = np.asarray(signal)
    extra = padded_length(len(signal), slice_len, starts) - len(signal)
    return np.concatenate([signal, np.zeros((extra,) + signal.shape[1:], signal.dtype)])


def extract_windows(signal, slice_len, overlap_ratio=0.0, pad_end=False, first_slice=False,
                    offset=0):
    """Stack of the windows of ``signal``: shape ``[count, slice_len, *signal.shape[1:]]``."""
    signal = np.asarray(signal)
    starts = window_starts(len(signal), slice_len, overlap_ratio, pad_end, first_slice, offset)
    padded = pad_signal(signal, slice_len, starts)
    return np.stack([padded[s:s + slice_len] for s in starts])


def window_table(lengths, slice_len, hop, pad_end=False, first_slice=False, offsets=None):
    """Windows of many files at once, for the data pipeline.

    Args:
      lengths: samples per file, shape ``[num_files]``.
      offsets: per-file start offsets (each in ``[0, max_offset)``), or None for all zeros.

    Returns:
      ``(file_index, local_start, valid)``: for every window, the file it comes from, its start
      inside that file and how many of its samples come from the file (the rest are zeros).
    """
    lengths = np.asarray(lengths, dtype=np.int64)
    offsets = np.zeros_like(lengths) if offsets is None or first_slice else np.asarray(
        offsets, dtype=np.int64)
    counts = num_windows(lengths, slice_len, hop, pad_end, first_slice, offsets)
    file_index = np.repeat(np.arange(len(lengths), dtype=np.int64), counts)
    first_of_file = np.cumsum(counts) - counts
    k = np.arange(int(counts.sum()), dtype=np.int64) - np.repeat(first_of_file, counts)
    local_start = offsets[file_index] + hop * k
    valid = np.minimum(slice_len, lengths[file_index] - local_start)
    return file_index, local_start, valid


def _check_slice_len(slice_len):
    if int(slice_len) != slice_len or slice_len <= 0:
        raise ValueError(f"slice_len must be a positive integer, got {slice_len!r}")


def _check_num_samples(num_samples):
    if int(num_samples) != num_samples or num_samples <= 0:
        raise ValueError(f"num_samples must be a positive integer, got {num_samples!r}")
