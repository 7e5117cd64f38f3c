"""Training batches from a folder of audio files.

:func:`audio_dataset` decodes and resamples every file once (:mod:`wavegan_tf.audio_files`),
keeps the result as one contiguous float32 tensor with a per-file (start, length) table, and then
serves batches with TensorFlow ops only: each pass draws new window offsets and a new order
(the rule of :mod:`wavegan_tf.slicing`, computed on the whole table at once), and every batch is
one ``tf.gather`` of ``start + range(slice_len)``. No Python runs per batch, so the pipeline is
fast, runs in parallel, and never holds the interpreter at exit.
"""

import hashlib
import os
import tempfile

import numpy as np
import tensorflow as tf

from wavegan_tf import audio_files, slicing

_CACHE_VERSION = 1


def audio_dataset(data_dir, slice_len=16384, sample_rate=16000, num_channels=1, batch_size=64,
                  first_slice=False, overlap_ratio=0.0, pad_end=False, normalize=True,
                  shuffle=True, seed=None, cache="memory", repeat=True,
                  max_cache_bytes=4 * 2**30, num_shards=1, shard_index=0):
    """A ``tf.data.Dataset`` of float32 batches ``[batch_size, slice_len, num_channels]``.

    Files are found recursively under ``data_dir`` (wav, flac, ogg, aiff/aif, and mp3 where
    libsndfile reads it; extensions in any case); unusable files are skipped with a warning
    (see :func:`wavegan_tf.audio_files.scan_audio_folder`). Every file is resampled to
    ``sample_rate`` with soxr and mixed to ``num_channels`` (mean to mono, mono duplicated to
    more). With ``normalize`` each file is divided by its peak absolute value, so batches lie in
    [-1, 1]; without it samples are as decoded (integer formats lie in [-1, 1)).

    Windows follow :mod:`wavegan_tf.slicing`: per file and pass a random offset in ``[0, hop)``
    (never past the first whole window; none with ``first_slice``), then windows every
    ``hop = round(slice_len * (1 - overlap_ratio))`` samples; ``pad_end`` keeps a zero-padded
    last partial window; a file shorter than one slice gives one zero-padded window. Batches are
    made with ``drop_remainder``; with ``repeat`` they run on across pass boundaries.

    Args:
      shuffle: shuffle all windows of a pass together (otherwise file order, then time order).
      seed: the same seed gives the same batches. None draws a seed when the dataset is made.
      cache: where the decoded audio is kept between runs. ``"memory"``: nowhere; every run
        decodes the folder again. A directory path: each file's decoded audio is stored there as
        ``<key>.npy``, the key hashing the file's absolute path, modification time and size and
        the sample rate and channel count (an edited file is decoded again; old entries are
        never read again and the directory may be deleted at any time). Entries are written
        under a temporary name and renamed, so an interrupted run never leaves a half entry.
        Either way the decoded audio is held in memory while training.
      repeat: True gives an endless dataset with new offsets and order every pass; False one pass.
      max_cache_bytes: most memory the decoded audio may take; checked from the file headers
        before anything is decoded.
      num_shards, shard_index: keep only the usable files ``shard_index::num_shards`` (in sorted
        path order), so that each of ``num_shards`` workers trains on its own files. Every
        worker still decodes the whole folder once; only its shard is kept.

    Raises:
      ValueError: a bad argument (naming it), no usable audio, audio larger than
        ``max_cache_bytes``, or fewer windows than one batch.
      FileNotFoundError: ``data_dir`` does not exist.
    """
    hop = _check_args(slice_len, sample_rate, num_channels, batch_size, overlap_ratio, cache,
                      max_cache_bytes)
    store = load_audio_store(data_dir, sample_rate, num_channels, normalize, cache,
                             max_cache_bytes, num_shards, shard_index)
    fewest = int(slicing.num_windows(
        store.lengths, slice_len, hop, pad_end, first_slice,
        slicing.max_offset(store.lengths, slice_len, hop) - 1).sum())
    if fewest < batch_size:
        raise ValueError(
            f"{data_dir!r} gives only {fewest} windows of slice_len={slice_len} from "
            f"{len(store.lengths)} files, fewer than one batch of batch_size={batch_size}; lower "
            f"batch_size or slice_len, raise overlap_ratio, or add audio")
    return _batches(store, slice_len, hop, batch_size, pad_end, first_slice, shuffle,
                    _base_seed(seed), repeat)


class AudioStore:
    """All decoded audio of a folder: ``audio[starts[i]:starts[i] + lengths[i]]`` is file ``i``."""

    def __init__(self, audio, lengths, paths):
        self.audio = audio
        self.lengths = np.asarray(lengths, dtype=np.int64)
        self.starts = np.cumsum(self.lengths) - self.lengths
        self.paths = list(paths)


def load_audio_store(data_dir, sample_rate=16000, num_channels=1, normalize=True,
                     cache="memory", max_cache_bytes=4 * 2**30, num_shards=1, shard_index=0):
    """Decode (or load from the disk cache) the usable audio of ``data_dir`` into one array.

    With ``num_shards > 1`` only the files ``shard_index::num_shards`` are kept.
    """
    _check_shard(num_shards, shard_index)
    load = None
    if cache != "memory":
        load = lambda p: _cached_decode(cache, p, sample_rate, num_channels)  # noqa: E731
    report = audio_files.scan_audio_folder(data_dir, sample_rate, num_channels, keep_audio=True,
                                           load=load, max_audio_bytes=max_cache_bytes)
    parts, lengths, paths = report.audio, report.lengths, report.used
    report.audio = None
    if num_shards > 1:
        if len(paths) < num_shards:
            raise ValueError(
                f"{data_dir!r} has {len(paths)} usable files, fewer than num_shards={num_shards}: "
                "every shard needs at least one file")
        keep = slice(shard_index, None, num_shards)
        parts, lengths, paths = parts[keep], lengths[keep], paths[keep]
    if normalize:
        for part in parts:
            peak = np.abs(part).max()
            if peak > 0:
                part /= peak
    return AudioStore(np.concatenate(parts), lengths, paths)


def window_table(lengths, slice_len, hop, pad_end, first_slice, offsets):
    """TensorFlow twin of :func:`wavegan_tf.slicing.window_table` (same rule, same result)."""
    lengths = tf.convert_to_tensor(lengths, tf.int64)
    slice_len, hop = tf.constant(slice_len, tf.int64), tf.constant(hop, tf.int64)
    offsets = tf.zeros_like(lengths) if first_slice else tf.convert_to_tensor(offsets, tf.int64)
    if first_slice:
        counts = tf.ones_like(lengths)
    else:
        remaining = tf.maximum(lengths - offsets - slice_len, 0)
        counts = 1 + (-(-remaining // hop) if pad_end else remaining // hop)
    file_index = tf.repeat(tf.range(tf.size(lengths, tf.int64), dtype=tf.int64), counts)
    first_of_file = tf.cumsum(counts, exclusive=True)
    k = tf.range(tf.reduce_sum(counts), dtype=tf.int64) - tf.gather(first_of_file, file_index)
    local_start = tf.gather(offsets, file_index) + hop * k
    valid = tf.minimum(slice_len, tf.gather(lengths, file_index) - local_start)
    return file_index, local_start, valid


def _batches(store, slice_len, hop, batch_size, pad_end, first_slice, shuffle, seed, repeat):
    """The batched dataset over ``store``: one pass per element of a counter, then copies."""
    channels = store.audio.shape[1]
    # slice_len zeros after the last file, so that every window is a plain in-bounds slice.
    audio = tf.concat([store.audio, tf.zeros([slice_len, channels], tf.float32)], axis=0)
    store.audio = None
    lengths = tf.constant(store.lengths)
    file_starts = tf.constant(store.starts)
    max_offsets = tf.constant(slicing.max_offset(store.lengths, slice_len, hop))

    def one_pass(pass_index):
        offset_seed = tf.stack([tf.constant(seed, tf.int64), pass_index * 2])
        order_seed = tf.stack([tf.constant(seed, tf.int64), pass_index * 2 + 1])
        draws = tf.random.stateless_uniform(tf.shape(lengths), offset_seed, dtype=tf.float64)
        offsets = tf.cast(draws * tf.cast(max_offsets, tf.float64), tf.int64)
        table = window_table(lengths, slice_len, hop, pad_end, first_slice, offsets)
        if shuffle:
            keys = tf.random.stateless_uniform(tf.shape(table[0]), order_seed)
            order = tf.argsort(keys)
            table = tuple(tf.gather(t, order) for t in table)
        return tf.data.Dataset.from_tensor_slices(table)

    def copy_windows(file_index, local_start, valid):
        starts = tf.gather(file_starts, file_index) + local_start
        # One contiguous slice per window: several times faster than a gather of every sample.
        windows = tf.stack([audio[starts[i]:starts[i] + slice_len] for i in range(batch_size)])
        windows = tf.ensure_shape(windows, [batch_size, slice_len, channels])
        return tf.cond(tf.reduce_all(valid >= slice_len), lambda: windows,
                       lambda: _zero_padding(windows, valid, slice_len))

    passes = tf.data.Dataset.counter() if repeat else tf.data.Dataset.range(1)
    dataset = passes.flat_map(one_pass).batch(batch_size, drop_remainder=True)
    dataset = dataset.map(copy_windows, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    return dataset.prefetch(tf.data.AUTOTUNE)


def _zero_padding(windows, valid, slice_len):
    """Zero every sample past a window's ``valid`` count: the padding past its file's end."""
    return windows * tf.cast(tf.sequence_mask(valid, slice_len), windows.dtype)[:, :, None]


def _cached_decode(cache_dir, path, sample_rate, num_channels):
    """Decoded audio of ``path`` from ``cache_dir`` when present, else decoded and stored."""
    entry = os.path.join(cache_dir, _entry_key(path, sample_rate, num_channels) + ".npy")
    try:
        return np.load(entry)
    except (OSError, ValueError):
        pass
    audio = audio_files.decode_audio_file(path, sample_rate, num_channels)
    _atomic_save(entry, audio)
    return audio


def _entry_key(path, sample_rate, num_channels):
    stat = os.stat(path)
    ident = (f"{_CACHE_VERSION}|{os.path.abspath(path)}|{stat.st_mtime_ns}|{stat.st_size}|"
             f"{sample_rate}|{num_channels}")
    return hashlib.sha256(ident.encode()).hexdigest()[:32]


def _atomic_save(path, array):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path), prefix=".tmp-", suffix=".npy")
    try:
        with os.fdopen(fd, "wb") as f:
            np.save(f, array)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def _base_seed(seed):
    if seed is None:
        return int(np.random.SeedSequence().entropy % 2**63)
    if isinstance(seed, bool) or int(seed) != seed:
        raise ValueError(f"seed must be an integer or None, got {seed!r}")
    return int(seed)


def _check_shard(num_shards, shard_index):
    """ValueError unless ``0 <= shard_index < num_shards`` are integers."""
    for name, value in (("num_shards", num_shards), ("shard_index", shard_index)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
            raise ValueError(f"{name} must be an integer, got {name}={value!r}")
    if num_shards < 1 or not 0 <= shard_index < num_shards:
        raise ValueError(f"need num_shards >= 1 and 0 <= shard_index < num_shards, got "
                         f"num_shards={num_shards!r}, shard_index={shard_index!r}")


def _check_args(slice_len, sample_rate, num_channels, batch_size, overlap_ratio, cache,
                max_cache_bytes):
    """Validate the arguments of :func:`audio_dataset`; returns the hop length."""
    for name, value in (("slice_len", slice_len), ("sample_rate", sample_rate),
                        ("num_channels", num_channels), ("batch_size", batch_size),
                        ("max_cache_bytes", max_cache_bytes)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    if not isinstance(cache, (str, os.PathLike)) or not str(cache):
        raise ValueError(f"cache must be 'memory' or a directory path, got {cache!r}")
    return slicing.hop_length(slice_len, overlap_ratio)
