"""A generated example galaxy as five single-band FITS cutouts, with its truth.

For trying `~picasso_astro.predict` and ``picasso-predict`` without any survey
data: a mock galaxy (`~picasso_astro.training.mocks.make_mock`) is given a
tangent-plane WCS and written as ``PREFIX-{u,g,r,i,z}.fits`` in nanomaggies,
with its truth maps in ``PREFIX-truth.fits``.
"""

from pathlib import Path

import numpy as np
from astropy.io import fits
from astropy.wcs import WCS

from ..images import BANDS, PIXEL_SCALE
from ..properties import PROPERTIES

__all__ = ["write_example_galaxy"]


def _example_wcs(shape, ra, dec):
    wcs = WCS(naxis=2)
    wcs.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    wcs.wcs.crval = [ra, dec]
    wcs.wcs.crpix = [(shape[1] + 1) / 2, (shape[0] + 1) / 2]
    wcs.wcs.cdelt = [-PIXEL_SCALE / 3600, PIXEL_SCALE / 3600]
    return wcs


def write_example_galaxy(
    directory, *, seed=1, size=128, prefix="mock", ra=180.0, dec=0.0, overwrite=False
):
    """Write a mock galaxy as five cutouts and a truth file.

    Parameters
    ----------
    directory : str or `~pathlib.Path`
        Created if needed.
    seed : int
        Mock seed; the same seed gives the same galaxy.
    size : int
        Image side in pixels.
    prefix : str
        File name prefix.
    ra, dec : float
        Where on the sky (degrees) to put the cutouts' WCS.
    overwrite : bool
        Replace existing files.

    Returns
    -------
    paths : list of `~pathlib.Path`
        The five band files in u, g, r, i, z order, then the truth file.
    """
    from .mocks import make_mock

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    mock = make_mock(seed, size=size)
    wcs = _example_wcs(mock.images["r"].shape, ra, dec)
    paths = []
    for band in BANDS:
        header = wcs.to_header()
        header["FILTER"] = band
        header["BUNIT"] = "nanomaggy"
        header["ORIGIN"] = "picasso_astro mock"
        header["MOCKSEED"] = seed
        header["PSF_FWHM"] = (
            round(mock.params[f"seeing_{band}"], 3),
            "PSF FWHM [arcsec]",
        )
        path = directory / f"{prefix}-{band}.fits"
        fits.PrimaryHDU(mock.images[band].data, header=header).writeto(
            path, overwrite=overwrite
        )
        paths.append(path)
    hdus = [fits.PrimaryHDU()]
    for name, truth in zip(PROPERTIES, mock.truth, strict=True):
        hdu = fits.ImageHDU(np.asarray(truth, dtype=np.float32), name=name.upper())
        hdu.header.update(wcs.to_header())
        hdu.header["BUNIT"] = PROPERTIES[name].unit.to_string()
        hdus.append(hdu)
    truth_path = directory / f"{prefix}-truth.fits"
    fits.HDUList(hdus).writeto(truth_path, overwrite=overwrite)
    paths.append(truth_path)
    return paths
