"""From per-band images to the model's input.

The steps shared by real data and mocks: put the five bands on one pixel grid,
stack them in `~picasso_astro.images.BANDS` order, and scale the fluxes to the
model's input convention.
"""

import numpy as np
from astropy.wcs.utils import pixel_to_pixel

from .exceptions import PicassoInputError
from .images import BANDS

__all__ = [
    "DEFAULT_SOFTENING",
    "align_bands",
    "stack_bands",
    "to_model_input",
]

#: asinh softening per band in nanomaggies (Lupton, Gunn & Szalay 1999; the
#: SDSS asinh-magnitude ``b`` values, 1.4, 0.9, 1.2, 1.8 and 7.4 x 1e-10 maggies).
DEFAULT_SOFTENING = {"u": 0.14, "g": 0.09, "r": 0.12, "i": 0.18, "z": 0.74}

#: Bands overlapping the reference band by less than this fraction are refused.
MIN_OVERLAP = 0.5


def _same_grid(image, reference):
    if image.shape != reference.shape:
        return False
    if image.wcs is None or reference.wcs is None:
        return image.wcs is None and reference.wcs is None
    ny, nx = reference.shape
    corners_x = np.array([0, nx - 1, 0, nx - 1, (nx - 1) / 2])
    corners_y = np.array([0, 0, ny - 1, ny - 1, (ny - 1) / 2])
    x, y = pixel_to_pixel(image.wcs, reference.wcs, corners_x, corners_y)
    return bool(np.all(np.hypot(x - corners_x, y - corners_y) < 1e-3))


def _overlap_fraction(image, reference):
    ny, nx = image.shape
    yy, xx = np.mgrid[0 : ny : max(ny // 16, 1), 0 : nx : max(nx // 16, 1)]
    x, y = pixel_to_pixel(image.wcs, reference.wcs, xx.ravel(), yy.ravel())
    ref_ny, ref_nx = reference.shape
    inside = (x > -0.5) & (x < ref_nx - 0.5) & (y > -0.5) & (y < ref_ny - 0.5)
    return float(np.mean(inside))


def align_bands(images, *, reference_band="r"):
    """Put every band on the pixel grid of the reference band.

    Bands already on the reference grid are returned unchanged; the others are
    reprojected with `reproject.reproject_interp`, and pixels outside their
    footprint are masked.

    Parameters
    ----------
    images : dict of str to `~picasso_astro.images.BandImage`
        One image per band.
    reference_band : str
        The band whose grid the others are put on.

    Returns
    -------
    aligned : dict of str to `~picasso_astro.images.BandImage`

    Raises
    ------
    PicassoInputError
        If a band lacks a WCS while the grids differ, or covers too little of the
        reference band's sky.
    """
    from reproject import reproject_interp

    from .images import BandImage

    reference = images[reference_band]
    aligned = {}
    for band, image in images.items():
        if band == reference_band or _same_grid(image, reference):
            aligned[band] = image
            continue
        if image.wcs is None or reference.wcs is None:
            msg = (
                f"the {band} and {reference_band} images differ in shape "
                f"({image.shape} vs {reference.shape}) and at least one has no WCS, "
                "so they cannot be aligned; give cutouts with celestial WCS headers"
            )
            raise PicassoInputError(msg)
        overlap = _overlap_fraction(image, reference)
        if overlap < MIN_OVERLAP:
            msg = (
                f"the {band}-band image covers only {overlap:.0%} of the "
                f"{reference_band}-band image's sky: the bands are not cutouts of the "
                "same galaxy; check that the files belong together"
            )
            raise PicassoInputError(msg)
        bad = image.bad_pixels()
        data = np.where(bad, 0.0, image.data)
        arrays = [data, bad.astype(np.float32)]
        if image.noise is not None:
            arrays.append(image.noise)
        reprojected = []
        footprint = None
        for array in arrays:
            out, footprint = reproject_interp(
                (array, image.wcs), reference.wcs, shape_out=reference.shape
            )
            reprojected.append(out)
        mask = (footprint < 1) | (reprojected[1] > 0) | ~np.isfinite(reprojected[0])
        noise = reprojected[2] if image.noise is not None else None
        meta = dict(image.meta, reprojected_to=reference_band)
        aligned[band] = BandImage(
            band,
            np.where(mask, np.nan, reprojected[0]),
            wcs=reference.wcs,
            noise=noise,
            mask=mask,
            psf=image.psf,
            psf_fwhm=image.psf_fwhm,
            meta=meta,
        )
    return aligned


def stack_bands(images):
    """Stack aligned band images into a cube in `BANDS` order.

    Parameters
    ----------
    images : dict of str to `~picasso_astro.images.BandImage`
        All five bands, on one grid (see `align_bands`).

    Returns
    -------
    cube : 3D `~numpy.ndarray`
        Shape ``(5, ny, nx)``, nanomaggies, float32; bad pixels are zero.
    mask : 2D bool `~numpy.ndarray`
        True where any band's pixel is bad.
    """
    missing = [band for band in BANDS if band not in images]
    if missing:
        msg = (
            f"missing band(s) {', '.join(missing)}; all of {''.join(BANDS)} are needed"
        )
        raise PicassoInputError(msg)
    shapes = {images[band].shape for band in BANDS}
    if len(shapes) != 1:
        msg = f"the bands are on different grids {sorted(shapes)}; align them first"
        raise PicassoInputError(msg)
    mask = np.zeros(images["r"].shape, dtype=bool)
    for band in BANDS:
        mask |= images[band].bad_pixels()
    cube = np.stack([images[band].data for band in BANDS]).astype(np.float32)
    cube[:, mask] = 0.0
    return cube, mask


def to_model_input(cube, mask, *, softening=None):
    """Scale a band cube to the network's input channels.

    Each band becomes ``asinh(flux / b_band)`` (Lupton et al. 1999), bad pixels
    become zero, and a sixth channel holds 1 on good pixels and 0 on bad ones.

    Parameters
    ----------
    cube : `~numpy.ndarray`
        Shape ``(..., 5, ny, nx)`` in nanomaggies.
    mask : `~numpy.ndarray`
        Shape ``(..., ny, nx)``, True on bad pixels.
    softening : sequence of float or dict, optional
        ``b`` per band in nanomaggies; `DEFAULT_SOFTENING` by default.

    Returns
    -------
    x : `~numpy.ndarray`
        Shape ``(..., 6, ny, nx)``, float32.
    """
    if softening is None:
        softening = DEFAULT_SOFTENING
    if isinstance(softening, dict):
        softening = [softening[band] for band in BANDS]
    b = np.asarray(softening, dtype=np.float32).reshape(-1, 1, 1)
    cube = np.asarray(cube, dtype=np.float32)
    mask = np.asarray(mask, dtype=bool)
    scaled = np.arcsinh(np.where(np.isfinite(cube), cube, 0.0) / b)
    good = (~mask).astype(np.float32)
    scaled = scaled * np.expand_dims(good, -3)
    return np.concatenate([scaled, np.expand_dims(good, -3)], axis=-3).astype(
        np.float32
    )
