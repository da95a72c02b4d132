"""Opening the FITS files users give, and saying why one cannot be read.

A file that is not FITS at all (a PNG, a JPEG), one cut short by an
interrupted download and one damaged otherwise each get their own message,
with what to do, instead of the library's.
"""

from pathlib import Path

from astropy.io import fits
from astropy.io.fits.verify import VerifyError
from astropy.utils.exceptions import AstropyWarning

from ._warnings import ignoring
from .exceptions import PicassoInputError

__all__ = ["first_image_header", "not_a_file", "open_fits", "unreadable"]

#: How other files begin, to name what was given instead of FITS.
_OTHER_FORMATS = {
    b"\x89PNG": "a PNG image",
    b"\xff\xd8\xff": "a JPEG image",
    b"GIF8": "a GIF image",
    b"II*\x00": "a TIFF image",
    b"MM\x00*": "a TIFF image",
    b"%PDF": "a PDF document",
    b"\x89HDF": "an HDF5 file",
}
#: Compressed files astropy opens itself (gzip, bzip2, zip).
_COMPRESSED = (b"\x1f\x8b", b"BZh", b"PK\x03\x04")

#: What astropy raises for files it cannot read.
_READ_ERRORS = (OSError, ValueError, TypeError, EOFError, VerifyError)

#: What a cutout must be, for messages about files that are something else.
NEEDED = (
    "picasso_astro needs FITS images in nanomaggies (BUNIT = 'nanomaggy', or "
    "counts with an NMGY keyword), one file per band or a five-plane cube"
)


def not_a_file(path):
    """Return the error for a path that is not a file (a directory, or nothing)."""
    path = Path(path)
    if path.is_dir():
        msg = (
            f"{path} is a directory, not a cutout file: give the FITS files in it, "
            "or, for whole SDSS frames, give the directory with targets= "
            "(picasso-predict --frames DIR --catalog FILE)"
        )
    else:
        msg = f"{path}: no such file; check the path"
    return PicassoInputError(msg)


def _start(path):
    """Return a file's first bytes, or None when it cannot be opened."""
    try:
        with open(path, "rb") as handle:
            return handle.read(16)
    except OSError:
        return None


def _other_format(start):
    """Return what a file is when its first bytes say it is not FITS, else None."""
    if start is None or start.startswith((b"SIMPLE", *_COMPRESSED)):
        return None
    for magic, kind in _OTHER_FORMATS.items():
        if start.startswith(magic):
            return kind
    return "its first bytes are not a FITS header (SIMPLE = T)"


def _truncation(hdulist, path):
    """Return ``(expected, actual)`` bytes when a plain FITS file is cut short."""
    start = _start(path)
    if start is None or start.startswith(_COMPRESSED):
        return None
    actual = Path(path).stat().st_size
    expected = 0
    for index in range(len(hdulist)):
        try:
            info = hdulist.fileinfo(index)
        except _READ_ERRORS:
            break
        if info is not None:
            expected = max(expected, info["datLoc"] + info["datSpan"])
    return (expected, actual) if expected > actual else None


def unreadable(path, exc, hdulist=None):
    """Return the error for a file that astropy failed to read.

    Parameters
    ----------
    path : `~pathlib.Path`
    exc : Exception
        What astropy raised.
    hdulist : `~astropy.io.fits.HDUList`, optional
        The file as far as it was opened, to tell a truncated file.

    Returns
    -------
    error : `~picasso_astro.exceptions.PicassoInputError`
    """
    if isinstance(exc, PermissionError):
        msg = f"{path}: permission denied; make it readable (chmod u+r {path})"
        return PicassoInputError(msg)
    start = _start(path)
    if start == b"":
        msg = (
            f"{path}: the file is empty (0 bytes; an interrupted download or "
            "copy?); download or copy it again"
        )
        return PicassoInputError(msg)
    kind = _other_format(start)
    if kind is not None:
        msg = f"{path}: not a FITS file ({kind}); {NEEDED}"
        if "image" in kind:
            msg += " (a picture holds display colours, not fluxes)"
        return PicassoInputError(msg)
    cut = None if hdulist is None else _truncation(hdulist, path)
    if cut is not None:
        expected, actual = cut
        msg = (
            f"{path}: the file is truncated: its headers promise {expected} bytes "
            f"but it holds {actual} (an interrupted download or copy?); download "
            "or copy it again"
        )
    else:
        msg = (
            f"{path}: the FITS file is truncated or damaged and cannot be read "
            f"({type(exc).__name__}: {exc}); download or copy it again"
        )
    return PicassoInputError(msg)


def open_fits(path):
    """Open a FITS file and read all its data now.

    Parameters
    ----------
    path : str or `~pathlib.Path`

    Returns
    -------
    hdulist : `~astropy.io.fits.HDUList`
        Every HDU's data in memory; the caller closes it.

    Raises
    ------
    PicassoInputError
        If the path is not a file, not FITS, truncated or damaged.
    """
    path = Path(path)
    if not path.is_file():
        raise not_a_file(path)
    hdulist = None
    try:
        with ignoring(AstropyWarning):
            hdulist = fits.open(path, memmap=False)
            hdulist.verify("silentfix")
            for hdu in hdulist:
                _ = hdu.data
    except _READ_ERRORS as exc:
        error = unreadable(path, exc, hdulist)
        if hdulist is not None:
            hdulist.close()
        raise error from None
    return hdulist


def first_image_header(path):
    """Return the header of a file's first image HDU, reading no pixel.

    HDUs load lazily, and the search stops at the first image HDU with data
    (the primary one, usually).

    Parameters
    ----------
    path : str or `~pathlib.Path`

    Returns
    -------
    header : `~astropy.io.fits.Header`

    Raises
    ------
    PicassoInputError
        If the path is not a file, not FITS, damaged or holds no image.
    """
    path = Path(path)
    if not path.is_file():
        raise not_a_file(path)
    try:
        with ignoring(AstropyWarning), fits.open(path, memmap=False) as hdulist:
            for hdu in hdulist:
                if hdu.is_image and hdu.header.get("NAXIS", 0) > 0:
                    hdu.verify("silentfix")
                    return hdu.header.copy()
    except _READ_ERRORS as exc:
        raise unreadable(path, exc) from None
    msg = (
        f"{path}: no image data in any HDU (only headers or tables); give the "
        "file that holds the band's image"
    )
    raise PicassoInputError(msg)
