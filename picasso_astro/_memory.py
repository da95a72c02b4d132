"""Memory: how much is available, and refusing images too large for it."""

from .exceptions import PicassoInputError

__all__ = ["BYTES_PER_PIXEL", "available_memory", "check_image_memory"]

#: Memory one galaxy takes per pixel of its cutout, from its five bands to its
#: maps (the bands, their preparation, the network's input, seven maps and their
#: uncertainties): the peak of numpy's allocations in `~picasso_astro.predict`
#: on a 1024 x 1024 cutout, every preparation step on (``tracemalloc``).
BYTES_PER_PIXEL = 200

#: Side of the cutouts suggested when an image is too large.
SUGGESTED_SIZE = 512


def available_memory():
    """Return the bytes of RAM available to this process, or None when unknown.

    ``psutil`` if installed, else ``MemAvailable`` of ``/proc/meminfo``.
    """
    try:
        import psutil
    except ImportError:
        pass
    else:
        return psutil.virtual_memory().available
    try:
        with open("/proc/meminfo") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def _size(size):
    if size >= 2**30:
        return f"{size / 2**30:.1f} GiB"
    return f"{size / 2**20:.1f} MiB"


def check_image_memory(shape, name, *, pad=0):
    """Refuse an image whose galaxy would not fit in the available memory.

    Checked before the five bands are stacked and prepared, so that a huge
    cutout gets this message rather than numpy's ``MemoryError`` half-way.

    Parameters
    ----------
    shape : tuple of int
        ``(ny, nx)`` of the cutout.
    name : str
        The galaxy (or image), for the message.
    pad : int
        Pixels added on each side while the galaxy is prepared (frames).

    Raises
    ------
    PicassoInputError
        If `BYTES_PER_PIXEL` times the pixels exceeds the available memory
        (`available_memory`; no check when it is unknown).
    """
    ny, nx = shape
    needed = BYTES_PER_PIXEL * (ny + 2 * pad) * (nx + 2 * pad)
    available = available_memory()
    if available is None or needed <= available:
        return
    side = SUGGESTED_SIZE
    padded = f" (with {pad} more on each side to prepare them)" if pad else ""
    msg = (
        f"{name}: {nx} x {ny} pixels{padded} would take about {_size(needed)} "
        "of memory to map (five bands, the network's input and the maps), but only "
        f"{_size(available)} is available; give a smaller cutout around the "
        f"galaxy (e.g. {side} x {side} pixels, astropy.nddata.Cutout2D), or for "
        f"frames a smaller cutout size (preprocessing={{'cutout': {side}}})"
    )
    raise PicassoInputError(msg)
