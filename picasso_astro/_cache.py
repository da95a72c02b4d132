"""A cache for what is derived from arrays: PSF widths, matching kernels.

Private: used by `picasso_astro.preprocess` and `picasso_astro._psf`.
"""

import hashlib
import threading
from collections import OrderedDict

import numpy as np

__all__ = ["ContentCache"]


class ContentCache:
    """A small least-recently-used cache keyed by the contents of arrays.

    The galaxies of one field share their PSFs (stars of the whole frame), so
    what is derived from a PSF (its FWHM, matching kernels) is computed once
    per field instead of once per galaxy.

    Parameters
    ----------
    maxsize : int
        Entries kept.
    """

    def __init__(self, maxsize=256):
        self.maxsize = maxsize
        self._entries = OrderedDict()
        self._lock = threading.Lock()

    @staticmethod
    def key(*arrays):
        """Return a hashable key for the shapes, types and values of arrays."""
        key = []
        for array in arrays:
            array = np.ascontiguousarray(array)
            digest = hashlib.blake2b(array.tobytes(), digest_size=16).digest()
            key.append((array.shape, array.dtype.str, digest))
        return tuple(key)

    def get(self, key, compute):
        """Return the value stored under ``key``, else store ``compute()``."""
        with self._lock:
            if key in self._entries:
                self._entries.move_to_end(key)
                return self._entries[key]
        value = compute()
        with self._lock:
            self._entries[key] = value
            while len(self._entries) > self.maxsize:
                self._entries.popitem(last=False)
        return value
