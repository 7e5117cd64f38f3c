"""The C allocator settings the command-line programs run with: freed tensors go back to the
system instead of staying resident.

TensorFlow's CPU memory comes from ``malloc``: small tensors directly, large ones from the
regions of its own pool allocator. glibc serves a block of 128 KiB or more with its own
``mmap`` and unmaps it when freed, but after the first such free it raises that threshold to
the block's size (up to 32 MiB), and later blocks come from heaps that keep freed memory
resident and fragment; it also gives threads their own heaps (arenas), whose free space the
other threads cannot use. A training step frees and re-allocates blocks thousands of times, so
the process's resident size ends far above what is alive at any moment. Fixing the threshold
at 1 MiB and using one arena keeps it closer: at the paper's size (d=64, batch 64) the peak
resident size was 40-180 MiB lower at 0.95-0.99x the speed (see the README's Memory paragraph).

The settings are process-wide, so the library never applies them on import: the programs in
``wavegan_tf.cli`` and ``bench/`` call :func:`release_freed_blocks` when they start. A user who
sets glibc's own ``MALLOC_MMAP_THRESHOLD_`` or ``MALLOC_ARENA_MAX`` keeps that value.
"""

import ctypes
import os
import platform

# mallopt parameters, from glibc's malloc.h.
_M_MMAP_THRESHOLD = -3
_M_ARENA_MAX = -8
MMAP_THRESHOLD = 2**20
ARENA_MAX = 1
_SETTINGS = (("MALLOC_MMAP_THRESHOLD_", _M_MMAP_THRESHOLD, MMAP_THRESHOLD),
             ("MALLOC_ARENA_MAX", _M_ARENA_MAX, ARENA_MAX))


def release_freed_blocks():
    """Makes glibc map every block of 1 MiB or more on its own and return it to the system
    when freed, and serve all threads from one arena; a setting named in the environment is
    left as the environment set it.

    Returns the names of the settings applied (empty where the C library is not glibc, e.g.
    macOS, where nothing is changed).
    """
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return []
    mallopt = ctypes.CDLL(None).mallopt
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    applied = []
    for name, parameter, value in _SETTINGS:
        if name not in os.environ and mallopt(parameter, value) == 1:
            applied.append(name)
    return applied
