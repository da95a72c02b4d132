"""Reading an image's WCS from its header, with messages that say what to fix."""

import re

import numpy as np
from astropy.wcs import WCS, FITSFixedWarning, SingularMatrixError, WcsError

from ._warnings import ignoring
from .exceptions import PicassoInputError

__all__ = ["read_wcs", "wcslib_message"]

#: The first line of a wcslib error: where in wcslib's C sources it was raised.
_WCSLIB_LOCATION = re.compile(r"^ERROR \d+ in \w+\(\) at line \d+ of file \S+:$")

#: A pixel-to-sky matrix this close to singular (relative to its scale) is one.
_SINGULAR = 1e-6

_STANDARD_WCS = (
    "e.g. CTYPE1 = 'RA---TAN', CTYPE2 = 'DEC--TAN', CD1_1 = -0.396/3600, "
    "CD2_2 = 0.396/3600, CD1_2 = CD2_1 = 0 for north-up SDSS pixels"
)


def wcslib_message(error):
    """Return a wcslib error's text without its C source locations.

    wcslib's messages start with lines such as ``ERROR 4 in wcs_types() at
    line 3121 of file cextern/wcslib/C/wcs.c:``, which say nothing to a user.

    Parameters
    ----------
    error : Exception or str

    Returns
    -------
    text : str
        The remaining lines joined, without their full stops; empty when
        nothing remains.
    """
    lines = [line.strip() for line in str(error).splitlines()]
    kept = [line for line in lines if line and not _WCSLIB_LOCATION.match(line)]
    return "; ".join(line.rstrip(".") for line in kept)


def _singular(source, matrix):
    matrix = np.asarray(matrix, dtype=float)
    rows = ", ".join("[" + ", ".join(f"{v:.3g}" for v in row) + "]" for row in matrix)
    finite = np.isfinite(matrix).all()
    rank = f"rank {np.linalg.matrix_rank(matrix)}" if finite else "not finite"
    msg = (
        f"{source}: the WCS is singular: its pixel-to-sky matrix [{rows}] (CD, "
        f"or PC times CDELT, in degrees; {rank}) has no inverse, so pixels have "
        "no area on the sky and no sky position can be placed on the image; fix "
        f"the CDi_j (or PCi_j and CDELTi) keywords ({_STANDARD_WCS}) or get the "
        "image again with a valid WCS"
    )
    return PicassoInputError(msg)


def read_wcs(header, source):
    """Return the celestial WCS of a header, refusing one that cannot be used.

    Parameters
    ----------
    header : `~astropy.io.fits.Header`
    source : str
        The file (or object) it came from, for messages.

    Returns
    -------
    wcs : `~astropy.wcs.WCS`
        Two axes, celestial.

    Raises
    ------
    PicassoInputError
        If the WCS cannot be read (an unknown projection, inconsistent axes),
        is not celestial, or is singular.
    """
    # Old SDSS and survey headers carry non-standard but harmless cards
    # (RADECSYS, date formats) that astropy fixes silently for us.
    with ignoring(FITSFixedWarning):
        try:
            wcs = WCS(header, naxis=2)
            wcs.wcs.set()
        except SingularMatrixError:
            raise _singular(source, _header_matrix(header)) from None
        except (WcsError, ValueError, KeyError, TypeError) as exc:
            reason = wcslib_message(exc) or repr(exc)
            msg = (
                f"{source}: its WCS cannot be read ({reason}); fix "
                f"the WCS keywords of its header ({_STANDARD_WCS}) or get the "
                "image again with a standard celestial WCS"
            )
            raise PicassoInputError(msg) from None
    if not wcs.has_celestial:
        msg = (
            f"{source}: no celestial WCS in the header; picasso_astro needs each "
            "cutout's sky position to align the bands and to place the maps: give "
            "cutouts with RA/Dec WCS keywords (CTYPEi, CRVALi, CRPIXi, CDi_j)"
        )
        raise PicassoInputError(msg)
    matrix = wcs.celestial.pixel_scale_matrix
    scale = np.abs(matrix).max()
    if not scale > 0 or abs(np.linalg.det(matrix)) <= _SINGULAR * scale**2:
        raise _singular(source, matrix)
    return wcs


def _header_matrix(header):
    """Return the CD (or PC) matrix a header gives, for messages."""
    prefix = "CD" if any(key.startswith("CD1_") for key in header) else "PC"
    return [[header.get(f"{prefix}{i}_{j}", 0.0) for j in (1, 2)] for i in (1, 2)]
