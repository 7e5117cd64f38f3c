"""Checking a ``.npy`` file's header against the file before numpy reads it.

numpy reads a header of the length the file's prefix declares (up to 4 GiB in format 2 and 3)
in one read, so a damaged or hostile file would make it allocate that much before anything is
checked. :func:`npy_header_problem` compares the declared length with the file's size first.
"""

import os

NPY_MAGIC = b"\x93NUMPY"
# numpy's own limit on the header it parses (np.load's max_header_size).
MAX_HEADER_BYTES = 10000


def npy_header_problem(path):
    """Why ``path`` cannot be a ``.npy`` file whose header numpy may read, or None.

    Files that do not start with the ``.npy`` magic (e.g. ``.npz`` archives) are left to numpy.
    """
    with open(path, "rb") as f:
        prefix = f.read(12)
        size = os.fstat(f.fileno()).st_size
    if not prefix.startswith(NPY_MAGIC) or len(prefix) < 10:
        return None
    major = prefix[6]
    if major == 1:
        start, length = 10, int.from_bytes(prefix[8:10], "little")
    elif major in (2, 3) and len(prefix) == 12:
        start, length = 12, int.from_bytes(prefix[8:12], "little")
    else:
        return f"not a .npy format numpy reads (version {major})"
    if start + length > size:
        return f"its header declares {length} bytes, more than the file's {size}"
    if length > MAX_HEADER_BYTES:
        return f"its header declares {length} bytes, more than the {MAX_HEADER_BYTES} numpy reads"
    return None
