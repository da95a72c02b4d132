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


def write_galaxy_files(folder, count):
    """Write ``count`` synthetic galaxies, five single-band files each."""
    paths = []
    for number in range(count):
        for band, hdu in make_band_hdus(seed=number).items():
            path = folder / f"gal{number}-{band}.fits"
            hdu.writeto(path)
            paths.append(path)
    return paths


def save_tiny_model(directory, *, cutout_size, name):
    """Save an untrained tiny model that cuts ``cutout_size`` pixels from frames."""
    from picasso_astro.config import ModelConfig
    from picasso_astro.hub import PicassoModel, save_model

    cutout = {"kind": "fixed", "size": cutout_size}
    config = ModelConfig(width=4, depth=2, groups=2, name=name, cutout=cutout)
    save_model(PicassoModel(config.build_network(), config), directory)
    return directory


#: Preparation options that make frame tests fast (no PSF matching, no source
#: masking); they differ from what the tiny models record, hence `FAST_WARNING`.
FAST_FRAMES = {"match_psf": False, "mask_sources": False}
FAST_WARNING = "ignore:preprocessing differs from what model"
#: What looks wrong with a target (stars, galaxies larger than tiny cutouts) is
#: not what plumbing tests on real frames are about.
TARGET_WARNINGS = "ignore::picasso_astro.exceptions.TargetWarning"
