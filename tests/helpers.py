"""Helpers shared by the tests: where the real data lives, synthetic cutouts."""

from pathlib import Path

#: The real SDSS/MaNGA files beside the project checkout (absent on users' machines).
SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def make_band_hdus(
    *, shape=(48, 40), seed=0, bands="ugriz", crval=(150.0, 2.0), shift=None, noise=0.05
):
    """Five synthetic single-band HDUs of one galaxy, in nanomaggies with WCS.

    ``shift`` maps a band to a (dx, dy) pixel offset of its grid.
    """
    import numpy as np
    from astropy.io import fits
    from astropy.wcs import WCS

    rng = np.random.default_rng(seed)
    ny, nx = shape
    hdus = {}
    for k, band in enumerate(bands):
        dx, dy = (shift or {}).get(band, (0.0, 0.0))
        wcs = WCS(naxis=2)
        wcs.wcs.ctype = ["RA---TAN", "DEC--TAN"]
        wcs.wcs.crval = crval
        wcs.wcs.crpix = [nx / 2 + 0.5 + dx, ny / 2 + 0.5 + dy]
        wcs.wcs.cdelt = [-0.396 / 3600, 0.396 / 3600]
        yy, xx = np.mgrid[0:ny, 0:nx]
        r2 = (xx - (nx / 2 - 0.5 + dx)) ** 2 + (yy - (ny / 2 - 0.5 + dy)) ** 2
        data = (1 + k) * 2.0 * np.exp(-r2 / (2 * 5.0**2)) + rng.normal(0, noise, shape)
        header = wcs.to_header()
        header["FILTER"] = band
        header["BUNIT"] = "nanomaggy"
        hdus[band] = fits.PrimaryHDU(data.astype(np.float32), header=header)
    return hdus
