"""Locks that keep two processes from writing the same run or the same export at once.

:class:`RunLock` guards a training directory. Its lock file, ``TRAIN_DIR/.lock``, holds one
JSON object naming the process that owns the run::

    {"pid": 4242, "host": "gpu-03", "started": "2026-01-31T09:12:44+00:00"}

The owner creates the file with ``O_CREAT | O_EXCL``, holds an exclusive ``fcntl.flock`` on it
while it runs, and deletes it when it stops (normally, by an exception, or by a signal that
Python turns into one). A process killed with SIGKILL cannot delete it, but the kernel drops
its flock. Another process that finds the file therefore decides:

* flock held by someone: the owner is alive -- refuse at once (:class:`TrainDirInUse`, naming
  the owner's pid, host and start time);
* flock free, same host and the pid no longer running: the owner died -- take the lock over
  (logged as a warning) by rewriting the file in place while holding its flock, so that two
  processes can never both take over the same stale lock;
* flock free otherwise (the pid is running again, or the lock was made on another host, where
  this process cannot look): refuse, and say to delete the file if that process is gone.

:func:`exclusive_lock` is the blocking kind used around replacing an export folder: a second
exporter waits for the first instead of failing.
"""

import contextlib
import datetime
import errno
import fcntl
import json
import os
import socket
import time

from absl import logging

LOCK_FILENAME = ".lock"
# A lock file that stays empty this long, with nobody holding its flock, was left by a process
# that died between creating and writing it.
_EMPTY_LOCK_GRACE_SECS = 1.0


class TrainDirInUse(OSError):
    """Another live process holds the training directory's lock."""


class RunLock:
    """Exclusive ownership of a training directory while a run trains in it.

    Use as a context manager; see the module doc for the lock file and the rules.
    ``took_over`` tells whether a stale lock of a dead process was replaced.
    """

    def __init__(self, train_dir):
        self.path = os.path.join(train_dir, LOCK_FILENAME)
        self.took_over = False
        self._fd = None

    def __enter__(self):
        self.acquire()
        return self

    def __exit__(self, *exc):
        self.release()
        return False

    def acquire(self):
        """Takes the lock or raises :class:`TrainDirInUse`; OSError if it cannot be written."""
        deadline = time.monotonic() + _EMPTY_LOCK_GRACE_SECS
        while self._fd is None:
            if self._create() or self._take_over_if_stale(deadline):
                return
            time.sleep(0.05)

    def release(self):
        """Deletes the lock file and drops the flock (safe to call twice)."""
        if self._fd is None:
            return
        with contextlib.suppress(FileNotFoundError):
            os.remove(self.path)
        os.close(self._fd)
        self._fd = None

    def _create(self):
        """Creates the lock file if there is none; True when this process now holds it."""
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            return False
        _flock(fd, blocking=True)
        self._own(fd)
        return True

    def _take_over_if_stale(self, deadline):
        """Inspects an existing lock file: True if it was stale and is now ours.

        False means "look again": the file vanished, or it is still empty while its creator
        may be writing it. Raises TrainDirInUse when a live process owns it.
        """
        try:
            fd = os.open(self.path, os.O_RDWR)
        except FileNotFoundError:
            return False
        try:
            stale, owner = self._check_stale(fd, deadline)
        except BaseException:
            os.close(fd)
            raise
        if not stale:
            os.close(fd)
            return False
        logging.warning("Taking over the lock %s left by %s, which is no longer running.",
                        self.path, _describe(owner))
        self.took_over = True
        self._own(fd)
        return True

    def _check_stale(self, fd, deadline):
        """``(stale, owner)`` of the lock file open as ``fd``, flocking it when it is free."""
        if not _flock(fd, blocking=False):
            raise TrainDirInUse(self._refusal(_read_owner(fd), "is training in it"))
        if not _same_file(fd, self.path):
            return False, None
        owner = _read_owner(fd)
        if owner is None:
            return time.monotonic() >= deadline, None
        if not _owner_is_dead(owner):
            raise TrainDirInUse(self._refusal(owner, _why_not_dead(owner)))
        return True, owner

    def _own(self, fd):
        """Writes this process's record into the locked file ``fd`` and keeps it open."""
        record = json.dumps({"pid": os.getpid(), "host": socket.gethostname(),
                             "started": _now()}).encode()
        os.ftruncate(fd, 0)
        os.pwrite(fd, record + b"\n", 0)
        os.fsync(fd)
        self._fd = fd

    def _refusal(self, owner, reason):
        train_dir = os.path.dirname(self.path)
        return (f"train_dir {train_dir!r} is in use: {_describe(owner)} {reason}. Wait for it "
                f"to finish, stop it, or choose another --train_dir (lock file {self.path!r})")


@contextlib.contextmanager
def exclusive_lock(path):
    """Holds an exclusive flock on the file ``path`` (created if needed), waiting for it.

    The file is deleted on release. A waiter that wakes up holding the flock of a file that was
    deleted meanwhile starts over, so two holders never overlap. File systems without flock
    support (some network mounts) get no lock rather than an error.
    """
    fd = None
    while fd is None:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        _flock(fd, blocking=True)
        if not _same_file(fd, path):
            os.close(fd)
            fd = None
    try:
        yield path
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.remove(path)
        os.close(fd)


def _flock(fd, blocking):
    """Locks ``fd`` exclusively: False if another holder has it (only when not blocking).

    Where the file system does not support flock, returns True without locking.
    """
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
    except BlockingIOError:
        return False
    except OSError as err:
        if err.errno not in (errno.ENOLCK, errno.EOPNOTSUPP, errno.EINVAL):
            raise
    return True


def _same_file(fd, path):
    """Whether ``path`` still names the open file ``fd`` (it may have been deleted)."""
    try:
        return os.path.samestat(os.fstat(fd), os.stat(path))
    except FileNotFoundError:
        return False


def _read_owner(fd):
    """The owner record of a lock file, or None when it is empty or not a valid record."""
    data = os.pread(fd, 4096, 0)
    try:
        owner = json.loads(data.decode())
    except (UnicodeDecodeError, json.JSONDecodeError):
        return None
    valid = isinstance(owner, dict) and isinstance(owner.get("pid"), int) and owner["pid"] > 0
    return owner if valid else None


def _owner_is_dead(owner):
    """True only when the owner ran on this host and its pid is no longer running."""
    if owner.get("host") != socket.gethostname():
        return False
    return not pid_running(owner["pid"])


def _why_not_dead(owner):
    if owner.get("host") != socket.gethostname():
        return ("ran on another host, where this process cannot check that it still runs; "
                "if it has stopped, delete the lock file")
    return ("is still running (or its pid was reused); if that is not a trainer of this run, "
            "delete the lock file")


def pid_running(pid):
    """Whether process ``pid`` exists on this host and is not a zombie."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat", encoding="utf-8") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


def _describe(owner):
    if owner is None:
        return "a process whose lock record is empty or unreadable"
    return (f"process {owner.get('pid')} on host {owner.get('host')} "
            f"(started {owner.get('started')})")


def _now():
    return datetime.datetime.now(datetime.timezone.utc).astimezone().isoformat(
        timespec="seconds")
