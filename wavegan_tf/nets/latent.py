"""The latent z of a generator: seeded draws, interpolation, checking, and z files.

z is drawn on the host with ``numpy.random.default_rng(seed).uniform(-1, 1)``, so a seed names
the same z, and therefore the same audio, in previews, generation, exports and scoring.

A z file is a ``.npy`` array ``[n, latent_dim]`` (what ``--z_out`` writes) or, when its name
ends in ``.json``, a JSON z file (what the drum machine page's "Export kept sounds" writes)::

    {"format": "wavegan_tf.z", "version": 1, "latent_dim": 100,
     "z": [[...], ...], "labels": ["kick", 2, ...]}

``labels`` is optional: one class per row of z, by name or index, for a conditional model.
"""

import json
import math
import os

import numpy as np

from wavegan_tf.files.atomic_files import atomic_output_file
from wavegan_tf.files.npy_files import npy_header_problem

Z_JSON_FORMAT = "wavegan_tf.z"
Z_JSON_VERSION = 1
# How much of a bad value a JSON z file's error message quotes.
QUOTE_CHARS = 40


def sample_z(n, latent_dim, seed):
    """z ~ U(-1, 1) of shape ``[n, latent_dim]`` float32 from ``default_rng(seed)``.

    Row i does not depend on ``n``: the first clips of a larger draw equal a smaller draw.
    """
    return np.random.default_rng(seed).uniform(-1.0, 1.0, (n, latent_dim)).astype(np.float32)


def interpolate_z(n, latent_dim, seed):
    """``n`` evenly spaced z on the line from the z of ``seed`` to the z of ``seed + 1``.

    The endpoints are exactly ``sample_z(1, latent_dim, seed)[0]`` and
    ``sample_z(1, latent_dim, seed + 1)[0]``, the first clips of those seeds.
    """
    if n < 2:
        raise ValueError(f"interpolation needs at least 2 clips, got {n}")
    start = np.random.default_rng(seed).uniform(-1.0, 1.0, latent_dim)
    end = np.random.default_rng(seed + 1).uniform(-1.0, 1.0, latent_dim)
    t = np.linspace(0.0, 1.0, n)[:, None]
    return ((1.0 - t) * start + t * end).astype(np.float32)


def check_z(z, latent_dim, source="z"):
    """``z`` as float32 after checking it is a finite ``[n >= 1, latent_dim]`` array.

    Finiteness is checked after the cast too: a float64 value beyond float32's range (1e308)
    would otherwise become infinite on the way to G.
    """
    z = np.asarray(z)
    if z.ndim != 2 or z.shape[0] < 1 or z.shape[1] != latent_dim:
        raise ValueError(f"{source} must have shape [n >= 1, latent_dim={latent_dim}], "
                         f"got {z.shape}")
    if not np.issubdtype(z.dtype, np.number) or np.iscomplexobj(z) or \
            not np.all(np.isfinite(z)):
        raise ValueError(f"{source} must hold finite numbers (dtype {z.dtype})")
    with np.errstate(over="ignore"):
        single = z.astype(np.float32)
    if not np.all(np.isfinite(single)):
        raise ValueError(f"{source} holds values beyond float32's range "
                         f"(largest magnitude {float(np.max(np.abs(z))):.3g})")
    return single


def load_z(path):
    """Reads the z vectors ``[n, latent_dim]`` of a z file (checked against a model later)."""
    return load_z_and_labels(path)[0]


def load_z_and_labels(path):
    """The z of the z file ``path`` and the class of each row it names (a list of names or
    indices), or None for the labels when it names none (a ``.npy`` never does).

    A name ending in ``.json`` is read as a JSON z file, any other as a ``.npy``. Raises
    FileNotFoundError or ValueError naming the file.
    """
    if not os.path.isfile(path):
        raise FileNotFoundError(f"z file {path!r} does not exist")
    if path.lower().endswith(".json"):
        return _load_z_json(path)
    return _load_z_npy(path), None


def _load_z_npy(path):
    """The array of the ``.npy`` z file ``path``."""
    try:
        # The header's length is checked and the data mapped first, so that a file claiming
        # more than it holds is an error here, not an allocation of the claimed size.
        problem = npy_header_problem(path)
        if problem:
            raise ValueError(problem)
        z = np.load(path, mmap_mode="r", allow_pickle=False)
    except Exception as err:  # noqa: BLE001 -- numpy's errors for a damaged file are many
        # (ValueError, OverflowError, SyntaxError and tokenize's TokenError for a header cut
        # short or lying, zipfile's BadZipFile for a damaged .npz): each means "not readable".
        reason = " ".join(str(err).split()) or type(err).__name__
        raise ValueError(f"cannot read z file {path!r} as a .npy array: {reason}") from None
    if not isinstance(z, np.ndarray):
        z.close()
        raise ValueError(f"z file {path!r} is a .npz archive, not a .npy array: write z with "
                         "numpy.save (or --z_out)")
    if z.ndim != 2 or z.shape[0] < 1:
        raise ValueError(f"z file {path!r} must hold an array [n >= 1, latent_dim], "
                         f"got shape {z.shape}")
    return np.array(z)


def _load_z_json(path):
    """The z (float64) and labels of the JSON z file ``path``."""
    try:
        with open(path, encoding="utf-8") as f:
            document = json.load(f, parse_constant=_refuse_constant)
    except (UnicodeDecodeError, ValueError, RecursionError) as err:
        reason = " ".join(str(err).split()) or type(err).__name__
        raise ValueError(f"cannot read z file {path!r} as JSON: {reason}") from None
    problem = z_json_problem(document)
    if problem:
        raise ValueError(f"z file {path!r} is not a {Z_JSON_FORMAT} JSON file: {problem}")
    return np.array(document["z"], np.float64), document.get("labels")


def _refuse_constant(name):
    """JSON's NaN and Infinity are no numbers a z can hold."""
    raise ValueError(f"{name} is not a finite number")


def _quote(value):
    """A short one-line repr of ``value`` for an error message."""
    text = repr(value)
    return text if len(text) <= QUOTE_CHARS else text[:QUOTE_CHARS] + "..."


def z_json_problem(document):
    """Why ``document`` (parsed JSON) is not a JSON z file, or None when it is one."""
    if not isinstance(document, dict):
        return f"it must be an object, got {_quote(document)}"
    if document.get("format") != Z_JSON_FORMAT:
        return f"format must be {Z_JSON_FORMAT!r}, got {_quote(document.get('format'))}"
    if document.get("version") != Z_JSON_VERSION or isinstance(document.get("version"), bool):
        return (f"version {_quote(document.get('version'))} is not supported (this wavegan_tf "
                f"reads version {Z_JSON_VERSION})")
    latent_dim = document.get("latent_dim")
    if not _is_int(latent_dim) or latent_dim < 1:
        return f"latent_dim must be an integer >= 1, got {_quote(latent_dim)}"
    rows = document.get("z")
    if not isinstance(rows, list) or not rows:
        return f"z must be a list of n >= 1 rows, got {_quote(rows)}"
    for i, row in enumerate(rows):
        if not isinstance(row, list) or len(row) != latent_dim:
            return f"z[{i}] must be a list of latent_dim={latent_dim} numbers, got {_quote(row)}"
        bad = [v for v in row if not _is_finite_number(v)]
        if bad:
            return f"z[{i}] must hold finite numbers, got {_quote(bad[0])}"
    return _labels_problem(document.get("labels"), len(rows))


def _labels_problem(labels, n):
    """Why ``labels`` are not one class name or index per row of n, or None (also for None)."""
    if labels is None:
        return None
    if not isinstance(labels, list) or len(labels) != n:
        return f"labels must be a list of {n} class names or indices (one per row of z)"
    bad = [v for v in labels if not (isinstance(v, str) or (_is_int(v) and v >= 0))]
    if bad:
        return f"labels must be class names or indices >= 0, got {_quote(bad[0])}"
    return None


def _is_int(value):
    return isinstance(value, int) and not isinstance(value, bool)


def _is_finite_number(value):
    """True for an int or float (not a bool) that a float64 holds as a finite number."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    try:
        return math.isfinite(float(value))
    except OverflowError:
        return False


def save_z(path, z):
    """Writes z to a ``.npy`` file atomically."""
    with atomic_output_file(path, suffix=".npy") as tmp:
        np.save(tmp, np.asarray(z, np.float32))
    return path
