"""Training batches from a folder of audio files.

:func:`audio_dataset` decodes and resamples every file once (:mod:`wavegan_tf.audio.audio_files`),
keeps the result as one contiguous float32 tensor with a per-file (start, length) table, and then
serves batches with TensorFlow ops only: each pass draws new window offsets and a new order
(the rule of :mod:`wavegan_tf.audio.slicing`, computed on the whole table at once), and every batch is
one ``tf.gather`` of ``start + range(slice_len)``. No Python runs per batch, so the pipeline is
fast, runs in parallel, and never holds the interpreter at exit.

Labels. With ``labels=True`` the folder is read as one subfolder per class,
``DATA_DIR/<class>/...`` (files at any depth below a class folder belong to it), and every batch
comes with the int32 class index of each window. The classes are the sorted first-level
subfolders (:func:`list_classes`), or the ``class_names`` given, in that order; the class
balance (files and seconds per class) is logged when the audio is loaded
(:func:`class_balance`).
"""

import hashlib
import os
import tempfile

import numpy as np
import tensorflow as tf
from absl import logging

from wavegan_tf.audio import audio_files, slicing
from wavegan_tf.files.npy_files import npy_header_problem

_CACHE_VERSION = 1


def audio_dataset(data_dir, slice_len=16384, sample_rate=16000, num_channels=1, batch_size=64,
                  first_slice=False, overlap_ratio=0.0, pad_end=False, normalize=True,
                  shuffle=True, seed=None, cache="memory", repeat=True,
                  max_cache_bytes=4 * 2**30, num_shards=1, shard_index=0, labels=False,
                  class_names=None):
    """A ``tf.data.Dataset`` of float32 batches ``[batch_size, slice_len, num_channels]``.

    With ``labels`` each element is ``(audio, label)`` instead, ``label`` an int32 ``[batch_size]``
    of class indices into ``class_names`` (default: :func:`list_classes` of ``data_dir``).

    Files are found recursively under ``data_dir`` (wav, flac, ogg, aiff/aif, and mp3 where
    libsndfile reads it; extensions in any case); unusable files are skipped with a warning
    (see :func:`wavegan_tf.audio.audio_files.scan_audio_folder`). Every file is resampled to
    ``sample_rate`` with soxr and mixed to ``num_channels`` (mean to mono, mono duplicated to
    more). With ``normalize`` each file is divided by its peak absolute value, so batches lie in
    [-1, 1]; without it samples are as decoded (integer formats lie in [-1, 1)).

    Windows follow :mod:`wavegan_tf.audio.slicing`: per file and pass a random offset in ``[0, hop)``
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
      labels: yield ``(audio, label)`` batches, the labels from the class subfolders.
      class_names: with ``labels``, the class subfolders to read, in label order (others are
        not read); None means all of them, sorted.

    Raises:
      ValueError: a bad argument (naming it), no usable audio, audio larger than
        ``max_cache_bytes``, or fewer windows than one batch; with ``labels`` also a folder
        that is not one subfolder per class (see :func:`list_classes`) or a class without
        usable audio.
      FileNotFoundError: ``data_dir`` (or a named class subfolder) does not exist.
    """
    hop = _check_args(slice_len, sample_rate, num_channels, batch_size, overlap_ratio, cache,
                      max_cache_bytes)
    if class_names is not None and not labels:
        raise ValueError(f"class_names={list(class_names)!r} is only used with labels=True")
    if labels:
        class_names = check_class_names(data_dir, class_names)
    store = load_audio_store(data_dir, sample_rate, num_channels, normalize, cache,
                             max_cache_bytes, num_shards, shard_index,
                             class_names=class_names)
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
    """All decoded audio of a folder: ``audio[starts[i]:starts[i] + lengths[i]]`` is file ``i``.

    A labelled store also has ``labels`` (the class index of each file) and ``class_names``;
    otherwise both are None.
    """

    def __init__(self, audio, lengths, paths, labels=None, class_names=None):
        self.audio = audio
        self.lengths = np.asarray(lengths, dtype=np.int64)
        self.starts = np.cumsum(self.lengths) - self.lengths
        self.paths = list(paths)
        self.labels = None if labels is None else np.asarray(labels, dtype=np.int32)
        self.class_names = None if class_names is None else list(class_names)


def list_classes(data_dir):
    """The class names of a labelled folder: its non-hidden first-level subfolders, sorted.

    Raises FileNotFoundError for a missing folder, and ValueError when audio files sit at the
    top level (every file must be inside a class subfolder) or there are fewer than 2 classes.
    """
    if not os.path.isdir(data_dir):
        raise FileNotFoundError(f"data folder {data_dir!r} does not exist (with labels: one "
                                "subfolder of audio files per class)")
    entries = sorted(name for name in os.listdir(data_dir) if not name.startswith("."))
    classes = [name for name in entries if os.path.isdir(os.path.join(data_dir, name))]
    extensions = audio_files.audio_extensions()
    loose = [name for name in entries if os.path.isfile(os.path.join(data_dir, name))
             and os.path.splitext(name)[1].lower() in extensions]
    if loose:
        where = f"and in the class subfolders {classes}" if classes else "and no class subfolders"
        raise ValueError(
            f"{data_dir!r} has audio files at its top level ({', '.join(loose[:3])}"
            f"{', ...' if len(loose) > 3 else ''}) {where}; with labels every file must sit in "
            "a subfolder named for its class (DATA_DIR/<class>/...): move them into one")
    if len(classes) < 2:
        raise ValueError(f"{data_dir!r} has {len(classes)} class subfolders {classes}; labels "
                         "need at least 2 (one subfolder of audio files per class)")
    return classes


def check_class_names(data_dir, class_names=None):
    """``class_names`` (default: :func:`list_classes`) after checking the folder's layout and
    that each names a subfolder of ``data_dir``; a list of str."""
    found = list_classes(data_dir)
    if class_names is None:
        return found
    class_names = [str(name) for name in class_names]
    if len(class_names) < 2 or len(set(class_names)) != len(class_names):
        raise ValueError(f"class_names must name at least 2 distinct classes, got "
                         f"{class_names!r}")
    missing = [name for name in class_names if name not in found]
    if missing:
        raise FileNotFoundError(f"no class subfolder {missing} in {data_dir!r}; its classes are "
                                f"{found}")
    return class_names


def class_balance(store, sample_rate):
    """``{class: {"files": n, "seconds": s, "share": fraction of all seconds}}`` of a labelled
    store, in label order."""
    seconds = np.bincount(store.labels, weights=store.lengths,
                          minlength=len(store.class_names)) / sample_rate
    files = np.bincount(store.labels, minlength=len(store.class_names))
    total = max(float(seconds.sum()), 1e-12)
    return {name: {"files": int(files[i]), "seconds": float(seconds[i]),
                   "share": float(seconds[i]) / total}
            for i, name in enumerate(store.class_names)}


def load_audio_store(data_dir, sample_rate=16000, num_channels=1, normalize=True,
                     cache="memory", max_cache_bytes=4 * 2**30, num_shards=1, shard_index=0,
                     class_names=None):
    """Decode (or load from the disk cache) the usable audio of ``data_dir`` into one array.

    With ``class_names`` only the subfolders ``data_dir/<class>`` are read and each file is
    labelled with its class's index; the class balance is logged. With ``num_shards > 1`` only
    the files ``shard_index::num_shards`` are kept.
    """
    _check_shard(num_shards, shard_index)
    load = None
    if cache != "memory":
        load = lambda p: _cached_decode(cache, p, sample_rate, num_channels)  # noqa: E731
    folders = [data_dir] if class_names is None else [
        os.path.join(data_dir, name) for name in class_names]
    parts, lengths, paths, labels = [], [], [], []
    budget = max_cache_bytes
    for label, folder in enumerate(folders):
        report = audio_files.scan_audio_folder(folder, sample_rate, num_channels,
                                               keep_audio=True, load=load,
                                               max_audio_bytes=budget)
        parts += report.audio
        lengths += report.lengths
        paths += report.used
        labels += [label] * len(report.used)
        budget -= sum(report.lengths) * num_channels * 4
        report.audio = None
    if num_shards > 1:
        if len(paths) < num_shards:
            raise ValueError(
                f"{data_dir!r} has {len(paths)} usable files, fewer than num_shards={num_shards}: "
                "every shard needs at least one file")
        keep = slice(shard_index, None, num_shards)
        parts, lengths, paths, labels = parts[keep], lengths[keep], paths[keep], labels[keep]
    if normalize:
        for part in parts:
            peak = np.abs(part).max()
            if peak > 0:
                part /= peak
    if class_names is None:
        return AudioStore(np.concatenate(parts), lengths, paths)
    store = AudioStore(np.concatenate(parts), lengths, paths, labels, class_names)
    _log_class_balance(data_dir, class_balance(store, sample_rate))
    return store


def _log_class_balance(data_dir, balance):
    logging.info("Classes of %s: %s", data_dir, ", ".join(
        f"{name} {b['files']} files ({b['seconds']:.1f} s, {b['share']:.0%})"
        for name, b in balance.items()))
    shares = [b["share"] for b in balance.values()]
    if max(shares) > 2 * min(shares):
        logging.warning("The classes of %s are unbalanced (%.0f%% to %.0f%% of the audio); "
                        "training sees each class about as often as its share", data_dir,
                        100 * min(shares), 100 * max(shares))


def window_table(lengths, slice_len, hop, pad_end, first_slice, offsets):
    """TensorFlow twin of :func:`wavegan_tf.audio.slicing.window_table` (same rule, same result)."""
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
    file_labels = None if store.labels is None else tf.constant(store.labels, tf.int32)

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
        windows = tf.cond(tf.reduce_all(valid >= slice_len), lambda: windows,
                          lambda: _zero_padding(windows, valid, slice_len))
        if file_labels is None:
            return windows
        return windows, tf.gather(file_labels, file_index)

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
        # Checked and mapped first: a damaged entry whose header claims more than the file holds
        # fails here instead of allocating the claim; one of another shape or type is decoded
        # again.
        if npy_header_problem(entry) is None:
            mapped = np.load(entry, mmap_mode="r", allow_pickle=False)
            if mapped.dtype == np.float32 and mapped.ndim == 2 and \
                    mapped.shape[1] == num_channels and mapped.shape[0] > 0:
                return np.array(mapped)
    except Exception:  # noqa: BLE001 -- any damage (numpy raises many kinds): decode again
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
