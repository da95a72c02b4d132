"""One entry point for every IFU product: the reader is chosen from the file."""

from pathlib import Path

from ..exceptions import PicassoInputError
from .manga import read_manga_maps
from .pipe3d import read_pipe3d

__all__ = ["is_hdf5", "read_ifu"]

_HDF5 = b"\x89HDF"


def is_hdf5(path):
    """Return whether a file starts as HDF5 files do."""
    with open(path, "rb") as handle:
        return handle.read(8).startswith(_HDF5)


def read_ifu(path, **options):
    """Read an IFU product as truth maps, whichever its format.

    Parameters
    ----------
    path : str or `~pathlib.Path`
        A MaNGA DAP ``MAPS`` FITS file (`read_manga_maps`) or a Pipe3D HDF5
        file (`read_pipe3d`).
    **options
        Passed to the reader.

    Returns
    -------
    maps : `~picasso_astro.maps.PropertyMaps`
    """
    path = Path(path)
    if not path.is_file():
        msg = f"{path}: no such file; give a MaNGA MAPS file or a Pipe3D .hdf5 file"
        raise PicassoInputError(msg)
    if is_hdf5(path):
        return read_pipe3d(path, **options)
    return read_manga_maps(path, **options)
