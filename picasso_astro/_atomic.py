"""Write files atomically: to a temporary name beside the target, then rename."""

import contextlib
import errno
import os
import tempfile
from pathlib import Path

from .exceptions import PicassoInputError

__all__ = ["atomic_path", "atomic_write_bytes", "write_failure"]

#: What a failed write means, and what to do, by errno.
_WRITE_PROBLEMS = {
    errno.ENOSPC: ("the disk is full", "free some space or write elsewhere"),
    # Not on every platform (Windows has no EDQUOT).
    getattr(errno, "EDQUOT", -1): (
        "your disk quota is used up",
        "free some space or write elsewhere",
    ),
    errno.EACCES: ("permission denied", "write to a directory you can write to"),
    errno.EPERM: ("permission denied", "write to a directory you can write to"),
    errno.EROFS: ("the file system is read-only", "write to another directory"),
}


def _default_mode():
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


@contextlib.contextmanager
def atomic_path(path):
    """Yield a temporary path beside ``path``; rename it to ``path`` on success.

    The file gets the permissions of a normally created file (not the 0600 of
    `tempfile.mkstemp`); on any error the temporary file is removed and
    ``path`` is left as it was.
    """
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        yield tmp
        os.chmod(tmp, _default_mode())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_bytes(path, data):
    """Write ``data`` to ``path`` atomically."""
    with atomic_path(path) as tmp, open(tmp, "wb") as handle:
        handle.write(data)


def write_failure(path, exc, what):
    """Return the error for a file that could not be written.

    Parameters
    ----------
    path : str or `~pathlib.Path`
    exc : OSError
    what : str
        What the file holds, e.g. ``"the maps"``.

    Returns
    -------
    error : `~picasso_astro.exceptions.PicassoInputError`
        Saying why (the disk is full, permission denied, ...), what to do, and
        that no partial file was left (writes go through `atomic_path`).
    """
    problem, remedy = _WRITE_PROBLEMS.get(
        exc.errno, (exc.strerror or str(exc), "check the output directory")
    )
    msg = (
        f"{path}: could not write {what}: {problem}; {remedy}; no partial file was left"
    )
    return PicassoInputError(msg)
