"""glibc's allocator, told to give large blocks back to the system.

By default glibc serves a block of 128 KiB or more with its own ``mmap`` and unmaps it on free,
but after the first such free it raises that threshold to the freed size (up to 32 MiB), so the
next large bodies land in its arenas, one per thread, and stay resident after they are freed:
a worker that parsed a few 30 MB prompts on different threads kept ~100 MB it no longer used.
Fixing the threshold (``M_MMAP_THRESHOLD``) turns that adjustment off. A no-op elsewhere.
"""

from __future__ import annotations

import ctypes

M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
MMAP_FROM = 1024 * 1024  # bytes; blocks this large are mapped and unmapped on their own
TRIM_FROM = 4 * 1024 * 1024  # free memory at the top of the heap past this is returned


def release_large_blocks() -> bool:
    """True when glibc's ``mallopt`` took both settings."""
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    return bool(mallopt(M_MMAP_THRESHOLD, MMAP_FROM)) and bool(mallopt(M_TRIM_THRESHOLD,
                                                                      TRIM_FROM))
