"""A synthetic SDSS field for the tests: sky with a known gradient, galaxies, noise.

Five bands on slightly shifted grids, as `~picasso_astro.images.BandImage`
or written as uncompressed SDSS-like frames (`write_field`).
"""

import numpy as np
from astropy.io import fits
from astropy.wcs import WCS

from picasso_astro.images import BANDS

SIGMA = 0.05
SHAPE = (700, 900)
#: Galaxies (x, y, amplitude, scale length) on the r frame.
GALAXIES = [
    (450.0, 350.0, 3.0, 5.0),
    (250.0, 500.0, 1.5, 3.0),
    (700.0, 200.0, 2.0, 4.0),
]
#: Sub-pixel shifts of each band's grid from the r band's (x, y).
SHIFTS = {"u": (0.3, -0.4), "g": (-0.2, 0.25), "r": (0.0, 0.0), "i": (0.45, 0.1)}
SHIFTS["z"] = (-0.35, -0.3)


def frame_wcs(band, shape=SHAPE):
    ny, nx = shape
    dx, dy = SHIFTS[band]
    wcs = WCS(naxis=2)
    wcs.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    wcs.wcs.crval = [150.0, 2.0]
    wcs.wcs.crpix = [nx / 2 + 0.5 + dx, ny / 2 + 0.5 + dy]
    wcs.wcs.cdelt = [-0.396 / 3600, 0.396 / 3600]
    return wcs


def sky(shape=SHAPE):
    """A sky of half a sigma tilted by +-0.5 sigma across the frame."""
    yy, xx = np.mgrid[0 : shape[0], 0 : shape[1]].astype(float)
    cy, cx = (shape[0] - 1) / 2, (shape[1] - 1) / 2
    return SIGMA * (0.5 + 0.5 * (xx - cx) / cx + 0.25 * (yy - cy) / cy)


def galaxies(band, shape=SHAPE):
    """The galaxies as the band's grid sees them (its grid shifted from r's)."""
    yy, xx = np.mgrid[0 : shape[0], 0 : shape[1]].astype(float)
    dx, dy = SHIFTS[band]
    out = np.zeros(shape)
    for x, y, amplitude, scale in GALAXIES:
        out += amplitude * np.exp(-np.hypot(xx - x - dx, yy - y - dy) / scale)
    return out


def write_field(folder, seed=1, shape=(300, 400)):
    """Five uncompressed SDSS-like frames of one synthetic field."""
    rng = np.random.default_rng(seed)
    ny, nx = shape
    for band in BANDS:
        wcs = frame_wcs(band, shape)
        header = wcs.to_header()
        header.update(FILTER=band, RUN=94, CAMCOL=1, FRAME=12, NMGY=0.005)
        header["BUNIT"] = "nanomaggy"
        image = sky(shape) + galaxies(band, shape) + rng.normal(0, SIGMA, shape)
        grid = np.full((8, 6), 100.0, np.float32)
        sky_hdu = fits.BinTableHDU.from_columns(
            [
                fits.Column("ALLSKY", f"{grid.size}E", dim="(6,8)", array=[grid]),
                fits.Column("XINTERP", f"{nx}E", array=[np.linspace(-0.5, 5.5, nx)]),
                fits.Column("YINTERP", f"{ny}E", array=[np.linspace(-0.5, 7.5, ny)]),
            ]
        )
        astrometry = fits.BinTableHDU.from_columns(
            [
                fits.Column("RUN", "J", array=[94]),
                fits.Column("NODE", "D", array=[95.0]),
            ]
        )
        fits.HDUList(
            [
                fits.PrimaryHDU(image.astype(np.float32), header=header),
                fits.ImageHDU(np.full(nx, 0.005, np.float32)),
                sky_hdu,
                astrometry,
            ]
        ).writeto(folder / f"frame-{band}-000094-1-0012.fits")
    return folder
