"""Output folders: created when missing and checked to be writable before any work is done."""

import os
import tempfile


def ensure_writable_dir(directory, role="output directory"):
    """Creates ``directory`` if needed and checks a file can be created in it; an OSError
    naming it as ``role`` (e.g. "train_dir") otherwise."""
    try:
        os.makedirs(directory, exist_ok=True)
        with tempfile.TemporaryFile(dir=directory):
            pass
    except OSError as err:
        raise OSError(f"cannot write to {role} {directory!r}: {err.strerror or err}") from err
