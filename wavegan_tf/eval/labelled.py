"""Reading a labelled folder of audio (one subfolder per class) into train/valid/test arrays.

Two layouts are accepted:

* ``DIR/<class>/*.wav``: a seeded split holds out ``holdout_fraction`` of each class for
  validation (early stopping) and as much again for the test (held-out accuracy);
* ``DIR/{train,valid,test}/<class>/*.wav`` (the spoken-digit recipe's layout): the folders are
  the splits. Without ``valid/`` a validation set is held out of ``train/``; without ``test/``
  the validation set also serves as the test.

Clips are resampled to ``sample_rate``, mixed to mono and trimmed or zero-padded to
``slice_len`` samples (their beginning is kept).
"""

import dataclasses
import os

import numpy as np

from wavegan_tf.audio import audio_files
from wavegan_tf.eval.features import fit_length

SPLIT_NAMES = ("train", "valid", "test")
DEFAULT_HOLDOUT_FRACTION = 0.1


@dataclasses.dataclass
class Split:
    """Clips ``audio`` ``[n, slice_len]`` float32 with integer ``labels`` ``[n]`` and ``paths``."""

    audio: np.ndarray
    labels: np.ndarray
    paths: list

    def __len__(self):
        return len(self.labels)


@dataclasses.dataclass
class LabelledAudio:
    """The class names (sorted folder names) and the three splits of a labelled folder."""

    class_names: list
    train: Split
    valid: Split
    test: Split
    layout: str


def has_split_folders(data_dir):
    """True when ``data_dir`` holds a ``train/`` folder (the split layout)."""
    return os.path.isdir(os.path.join(data_dir, "train"))


def class_folders(data_dir):
    """Sorted names of the non-hidden subfolders of ``data_dir`` (one per class)."""
    if not os.path.isdir(data_dir):
        raise FileNotFoundError(f"labelled data folder {data_dir!r} does not exist (expected "
                                "one subfolder of audio files per class)")
    names = sorted(name for name in os.listdir(data_dir)
                   if not name.startswith(".") and os.path.isdir(os.path.join(data_dir, name)))
    if len(names) < 2:
        raise ValueError(f"{data_dir!r} has {len(names)} class subfolders {names}; a classifier "
                         "needs at least 2 (one subfolder of audio files per class)")
    return names


def load_labelled_audio(data_dir, slice_len, sample_rate,
                        holdout_fraction=DEFAULT_HOLDOUT_FRACTION, seed=0):
    """Reads ``data_dir`` in either layout (see the module docstring) into a LabelledAudio."""
    if not 0.0 < holdout_fraction < 0.5:
        raise ValueError(f"holdout_fraction must lie in (0, 0.5), got {holdout_fraction!r}")
    if has_split_folders(data_dir):
        return _load_split_layout(data_dir, slice_len, sample_rate, holdout_fraction, seed)
    names = class_folders(data_dir)
    clips = _read_classes(data_dir, names, slice_len, sample_rate)
    rng = np.random.default_rng(seed)
    test, valid, train = _hold_out(clips, holdout_fraction, rng, parts=2)
    return LabelledAudio(names, train, valid, test, layout="class folders, seeded split")


def _load_split_layout(data_dir, slice_len, sample_rate, holdout_fraction, seed):
    names = class_folders(os.path.join(data_dir, "train"))
    train = _read_classes(os.path.join(data_dir, "train"), names, slice_len, sample_rate)
    present = {name: os.path.isdir(os.path.join(data_dir, name)) for name in SPLIT_NAMES}
    if present["valid"]:
        valid = _read_split(os.path.join(data_dir, "valid"), names, slice_len, sample_rate)
        train = _as_split(train)
    else:
        valid, train = _hold_out(train, holdout_fraction, np.random.default_rng(seed), parts=1)
    if present["test"]:
        test = _read_split(os.path.join(data_dir, "test"), names, slice_len, sample_rate)
    else:
        test = valid
    layout = "train/valid/test folders" + ("" if present["valid"] else ", valid held out of "
                                           "train") + ("" if present["test"] else ", test = valid")
    return LabelledAudio(names, train, valid, test, layout=layout)


def _read_split(folder, names, slice_len, sample_rate):
    """A valid/ or test/ folder as a Split; it may lack some of the training classes."""
    clips = _read_classes(folder, names, slice_len, sample_rate, require_all=False)
    if not clips:
        raise ValueError(f"split folder {folder!r} has none of the class folders {names}")
    return _as_split(clips)


def _read_classes(data_dir, names, slice_len, sample_rate, require_all=True):
    """``{label: (audio [n, slice_len], paths)}`` for the class folders ``names``."""
    extra = sorted(set(_class_folders_or_empty(data_dir)) - set(names))
    if extra:
        raise ValueError(f"{data_dir!r} has class folders {extra} that the training split "
                         f"does not have (classes: {names})")
    clips = {}
    for label, name in enumerate(names):
        folder = os.path.join(data_dir, name)
        if not os.path.isdir(folder):
            if require_all:
                raise FileNotFoundError(f"class folder {folder!r} does not exist")
            continue
        report = audio_files.scan_audio_folder(folder, sample_rate=sample_rate, num_channels=1,
                                               keep_audio=True)
        audio = np.stack([fit_length(a, slice_len) for a in report.audio])
        clips[label] = (audio, list(report.used))
    return clips


def _class_folders_or_empty(data_dir):
    """Subfolder names of ``data_dir`` ([] when it does not exist)."""
    if not os.path.isdir(data_dir):
        return []
    return [name for name in os.listdir(data_dir)
            if not name.startswith(".") and os.path.isdir(os.path.join(data_dir, name))]


def _hold_out(clips, fraction, rng, parts):
    """Per class, ``parts`` held-out sets of ``fraction`` of the clips each, then the rest."""
    chosen = [[] for _ in range(parts + 1)]
    for label, (audio, paths) in sorted(clips.items()):
        count = max(1, int(round(fraction * len(audio))))
        if len(audio) < parts * count + 1:
            raise ValueError(f"class folder {os.path.dirname(paths[0])!r} has {len(audio)} "
                             f"clips; at least {parts * count + 1} are needed to hold out "
                             f"{parts} x {count}")
        order = rng.permutation(len(audio))
        bounds = [i * count for i in range(parts + 1)] + [len(audio)]
        for part in range(parts + 1):
            index = order[bounds[part]:bounds[part + 1]]
            chosen[part].append((audio[index], np.full(len(index), label),
                                 [paths[i] for i in index]))
    return tuple(_concat(pieces) for pieces in chosen)


def _as_split(clips):
    return _concat([(audio, np.full(len(audio), label), paths)
                    for label, (audio, paths) in sorted(clips.items())])


def _concat(pieces):
    return Split(np.concatenate([p[0] for p in pieces]).astype(np.float32),
                 np.concatenate([p[1] for p in pieces]).astype(np.int32),
                 [path for p in pieces for path in p[2]])
