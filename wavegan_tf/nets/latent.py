"""The latent z of a generator: seeded draws, interpolation, checking, and ``.npy`` files.

z is drawn on the host with ``numpy.random.default_rng(seed).uniform(-1, 1)``, so a seed names
the same z, and therefore the same audio, in previews, generation, exports and scoring.
"""

import os

import numpy as np

from wavegan_tf.files.atomic_files import atomic_output_file
from wavegan_tf.files.npy_files import npy_header_problem


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
    """``z`` as float32 after checking it is a finite ``[n >= 1, latent_dim]`` array."""
    z = np.asarray(z)
    if z.ndim != 2 or z.shape[0] < 1 or z.shape[1] != latent_dim:
        raise ValueError(f"{source} must have shape [n >= 1, latent_dim={latent_dim}], "
                         f"got {z.shape}")
    if not np.issubdtype(z.dtype, np.number) or np.iscomplexobj(z) or \
            not np.all(np.isfinite(z)):
        raise ValueError(f"{source} must hold finite numbers (dtype {z.dtype})")
    return z.astype(np.float32)


def load_z(path):
    """Reads a ``.npy`` of z vectors ``[n, latent_dim]`` (checked against a model later)."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"z file {path!r} does not exist")
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


def save_z(path, z):
    """Writes z to a ``.npy`` file atomically."""
    with atomic_output_file(path, suffix=".npy") as tmp:
        np.save(tmp, np.asarray(z, np.float32))
    return path
