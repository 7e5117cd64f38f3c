"""Writing files and directories so that readers see either the old or the new one, never half.

Everything is first written under a unique temporary name beside its target (same directory,
hence the same file system) and then renamed into place. A failure on the way removes the
temporary copy and leaves whatever was at the target untouched. Temporary names start with
``.NAME.tmp-`` so that they are hidden and easy to recognise; they are created by the writer
itself, so files and folders get the usual permissions (umask), not private ones.
"""

import contextlib
import os
import shutil
import uuid


def temp_path_beside(path, kind="tmp", suffix=""):
    """A fresh, unused name ``.NAME.KIND-RANDOM[SUFFIX]`` in the directory of ``path``."""
    directory = os.path.dirname(os.path.abspath(path))
    name = f".{os.path.basename(os.path.normpath(path))}.{kind}-{uuid.uuid4().hex}{suffix}"
    return os.path.join(directory, name)


@contextlib.contextmanager
def atomic_output_file(path, suffix=""):
    """Yields a temporary file path beside ``path``; on success it is renamed onto ``path``.

    The body creates and writes the file at the yielded path. ``suffix`` keeps an extension on
    the temporary name for writers that infer the format from it. If the body raises, the
    temporary file is deleted and ``path`` is left as it was.
    """
    tmp = temp_path_beside(path, suffix=suffix)
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.remove(tmp)
        raise


@contextlib.contextmanager
def atomic_output_dir(path):
    """Yields a new empty directory beside ``path``; on success it replaces ``path``.

    An existing directory at ``path`` is first renamed aside, the new one renamed in, and only
    then is the old one deleted; if renaming the new one in fails, the old one is put back. If
    the body raises, the temporary directory is deleted and ``path`` is left as it was.
    """
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = temp_path_beside(path)
    os.mkdir(tmp)
    try:
        yield tmp
        _swap_in(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _swap_in(new_dir, path):
    """Renames ``new_dir`` to ``path``, replacing and then deleting any directory there."""
    if not os.path.lexists(path):
        os.rename(new_dir, path)
        return
    old = temp_path_beside(path, kind="old")
    os.rename(path, old)
    try:
        os.rename(new_dir, path)
    except BaseException:
        os.rename(old, path)
        raise
    shutil.rmtree(old, ignore_errors=True)
