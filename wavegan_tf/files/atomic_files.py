"""Writing files and directories so that readers see either the old or the new one, never half.

Everything is first written under a unique temporary name beside its target (same directory,
hence the same file system) and then renamed into place. A failure on the way removes the
temporary copy and leaves whatever was at the target untouched. Temporary names start with
``.NAME.tmp-`` so that they are hidden and easy to recognise; they are created by the writer
itself, so files and folders get the usual permissions (umask), not private ones. Their
contents are flushed to disk (fsync) before the rename, so that after a crash of the machine a
renamed file is not found empty.

Replacing a folder exchanges the two names in one step where Linux's renameat2 can, and takes
two renames elsewhere (the old one aside, the new one in). Writers of the same folder take
turns under a lock file ``.NAME.lock`` beside it, and each first repairs what an interrupted
writer left (:func:`recover_interrupted_replace`): if the folder is missing but an
``.NAME.old-*`` copy of it exists, that copy is renamed back; every other ``.NAME.tmp-*`` and
``.NAME.old-*`` is deleted.
"""

import contextlib
import ctypes
import errno
import glob
import os
import shutil
import time
import uuid

from absl import logging

from wavegan_tf.files.locks import exclusive_lock


def temp_path_beside(path, kind="tmp", suffix=""):
    """A fresh, unused name ``.NAME.KIND-RANDOM[SUFFIX]`` in the directory of ``path``."""
    directory = os.path.dirname(os.path.abspath(path))
    name = f".{os.path.basename(os.path.normpath(path))}.{kind}-{uuid.uuid4().hex}{suffix}"
    return os.path.join(directory, name)


@contextlib.contextmanager
def atomic_output_file(path, suffix="", tidy=False):
    """Yields a temporary file path beside ``path``; on success it is renamed onto ``path``.

    The body creates and writes the file at the yielded path. ``suffix`` keeps an extension on
    the temporary name for writers that infer the format from it. If the body raises, the
    temporary file is deleted and ``path`` is left as it was. With ``tidy``, writers of
    ``path`` take turns under the lock beside it, and each first deletes the temporary files
    that killed writers of ``path`` left.
    """
    if tidy:
        with exclusive_lock(lock_path_beside(path)):
            for stale in leftovers_beside(path, "tmp"):
                with contextlib.suppress(FileNotFoundError, IsADirectoryError):
                    os.remove(stale)
            with atomic_output_file(path, suffix) as tmp:
                yield tmp
        return
    tmp = temp_path_beside(path, suffix=suffix)
    try:
        yield tmp
        _fsync(tmp)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.remove(tmp)
        raise


@contextlib.contextmanager
def atomic_output_dir(path, check=None):
    """Yields a new empty directory beside ``path``; on success it replaces ``path``.

    An existing directory at ``path`` is first renamed aside, the new one renamed in, and only
    then is the old one deleted; if renaming the new one in fails, the old one is put back. If
    the body raises, the temporary directory is deleted and ``path`` is left as it was. Writers
    of the same ``path`` wait for each other, and each first repairs an interrupted replacement
    (see the module doc). ``check()``, when given, runs once this writer's turn has come and
    may raise to refuse (e.g. a folder that another writer filled meanwhile); nothing is
    written then.
    """
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with exclusive_lock(lock_path_beside(path)):
        recover_interrupted_replace(path)
        if check is not None:
            check()
        tmp = temp_path_beside(path)
        os.mkdir(tmp)
        try:
            yield tmp
            _fsync_tree(tmp)
            _swap_in(tmp, path)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise


def read_replaceable_dir(path, read, attempts=3):
    """``read(path)`` of a folder that writers replace with :func:`atomic_output_dir`, read
    again when a replacement got in the way: when the folder was replaced while it was read, or
    ``read`` failed (OSError, ValueError) while a replacement was under way (the lock file or
    leftovers beside it), this reader waits for the writer's turn to end, repairs an
    interrupted replacement as a writer would, and reads again (``attempts`` times in all).
    """
    for attempt in range(attempts):
        before = _identity(path)
        try:
            result = read(path)
        except (OSError, ValueError):
            if attempt + 1 == attempts or not (_identity(path) != before
                                               or replacement_under_way(path)):
                raise
            _wait_for_writers(path)
            continue
        if _identity(path) == before or attempt + 1 == attempts:
            return result
        _wait_for_writers(path)
    raise AssertionError("unreachable")


def _identity(path):
    try:
        info = os.stat(path)
    except OSError:
        return None
    return info.st_dev, info.st_ino, info.st_mtime_ns


def replacement_under_way(path):
    """Whether a writer holds (or an interrupted one left) the lock or leftovers of ``path``."""
    return os.path.lexists(lock_path_beside(path)) or bool(
        leftovers_beside(path, "old") or leftovers_beside(path, "tmp"))


def _wait_for_writers(path):
    """Waits until no writer replaces ``path`` and repairs an interrupted replacement; where the
    lock cannot be taken (a read-only folder) it only waits a moment."""
    try:
        with exclusive_lock(lock_path_beside(path)):
            recover_interrupted_replace(path)
    except OSError:
        time.sleep(0.2)


def lock_path_beside(path):
    """``.NAME.lock`` in the directory of ``path``: the lock of writers replacing ``path``."""
    directory = os.path.dirname(os.path.abspath(path))
    return os.path.join(directory, f".{os.path.basename(os.path.normpath(path))}.lock")


def leftovers_beside(path, kind):
    """Existing ``.NAME.KIND-*`` entries beside ``path``, newest first."""
    directory = os.path.dirname(os.path.abspath(path))
    name = os.path.basename(os.path.normpath(path))
    pattern = os.path.join(glob.escape(directory), glob.escape(f".{name}.{kind}-") + "*")
    return sorted(glob.glob(pattern), key=os.path.getmtime, reverse=True)


def recover_interrupted_replace(path):
    """Repairs ``path`` after a replacement by :func:`atomic_output_dir` was interrupted.

    When ``path`` is missing and a copy renamed aside (``.NAME.old-*``) exists, the newest such
    copy is renamed back to ``path``. Every other ``.NAME.old-*`` and ``.NAME.tmp-*`` beside
    ``path`` is then deleted. Call it only while holding the writers' lock
    (:func:`lock_path_beside`). Returns True when ``path`` was restored.
    """
    old = leftovers_beside(path, "old")
    restored = not os.path.lexists(path) and bool(old)
    if restored:
        os.rename(old.pop(0), path)
        logging.warning("Restored %s from the copy an interrupted replacement left beside it.",
                        path)
    debris = old + leftovers_beside(path, "tmp")
    for entry in debris:
        if os.path.isdir(entry) and not os.path.islink(entry):
            shutil.rmtree(entry, ignore_errors=True)
        else:
            os.remove(entry)
    if debris:
        logging.info("Removed %d leftover(s) of an interrupted write of %s.", len(debris), path)
    return restored


def remove_temp_files(directory):
    """Deletes the temporary files (``.NAME.tmp-*``, not folders) of interrupted writes of
    single files in ``directory``. Only for a directory no other process writes to."""
    debris = [p for p in glob.glob(os.path.join(glob.escape(directory), ".*.tmp-*"))
              if os.path.isfile(p)]
    for path in debris:
        os.remove(path)
    return debris


def _fsync(path):
    """Flushes the file ``path`` to disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_tree(directory):
    """Flushes every file under ``directory`` to disk."""
    for root, _, names in os.walk(directory):
        for name in names:
            path = os.path.join(root, name)
            if os.path.isfile(path) and not os.path.islink(path):
                _fsync(path)


def _swap_in(new_dir, path):
    """Renames ``new_dir`` to ``path``, replacing and then deleting any directory there.

    Where the system can exchange two names in one step (Linux's renameat2), a reader never
    finds ``path`` missing; elsewhere the old folder is renamed aside first.
    """
    if not os.path.lexists(path):
        os.rename(new_dir, path)
        return
    if _exchange(new_dir, path):
        shutil.rmtree(new_dir, ignore_errors=True)  # now the old folder
        return
    old = temp_path_beside(path, kind="old")
    os.rename(path, old)
    try:
        os.rename(new_dir, path)
    except BaseException:
        os.rename(old, path)
        raise
    shutil.rmtree(old, ignore_errors=True)


_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


def _exchange(a, b):
    """Swaps the names ``a`` and ``b`` atomically; False where the system cannot."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    result = renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE)
    if result == 0:
        return True
    error = ctypes.get_errno()
    if error in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):
        return False  # not supported here (kernel, file system)
    raise OSError(error, os.strerror(error), b)
