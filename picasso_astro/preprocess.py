"""From per-band images to the model's input.

The steps shared by real data and mocks: put the five bands on one pixel grid,
stack them in `~picasso_astro.images.BANDS` order, and scale the fluxes to the
model's input convention.
"""

import functools
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from astropy.coordinates import SkyCoord
from astropy.wcs import WCS
from astropy.wcs.utils import pixel_to_pixel

from ._cache import ContentCache
from ._warnings import ignoring
from .exceptions import PicassoInputError
from .images import BANDS, PIXEL_SCALE

__all__ = [
    "DEFAULT_SOFTENING",
    "MAX_RINGING",
    "PSF_SIZE",
    "PreparedTarget",
    "align_bands",
    "cutout_bands",
    "estimate_psf",
    "mask_sources",
    "match_psfs",
    "matching_kernel",
    "prepare_target",
    "prepare_targets",
    "psf_for_band",
    "resolve_cutout_size",
    "stack_bands",
    "subtract_background",
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
    reprojected as `reproject.reproject_interp` does with bilinear
    interpolation (one pixel mapping per band serves its data, noise and
    mask), and pixels outside their footprint are masked.

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
    from . import _resample
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
        coords = _resample.pixel_map(reference.wcs, image.wcs, reference.shape)
        bad = image.bad_pixels()
        arrays = [np.where(bad, 0.0, image.data), bad.astype(np.float32)]
        if image.noise is not None:
            arrays.append(image.noise)
        data, touched, *noise = _resample.resample(arrays, coords)
        mask = ~np.isfinite(data) | (touched > 0)
        noise = noise[0] if noise else None
        meta = dict(image.meta, reprojected_to=reference_band)
        aligned[band] = BandImage(
            band,
            np.where(mask, np.nan, data),
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


# ---------------------------------------------------------------------------
# From frames to cutouts: PSF, cutout, background, source masking, matching.
# ---------------------------------------------------------------------------

#: Odd size in pixels of the PSF images used for matching.
PSF_SIZE = 41

#: Largest accepted ringing (negative/positive kernel sum) of a matching kernel.
MAX_RINGING = 0.1


@functools.lru_cache(maxsize=64)
def _smoothing_profile(fwhm):
    """1D profile of photutils' normalised 2D Gaussian detection kernel.

    The Gaussian kernel is separable: two 1D passes give what
    astropy.convolution.convolve(normalize_kernel=True) gives with the 2D
    kernel (zeros beyond the edges), to rounding, several times faster.
    """
    from photutils.segmentation import make_2dgaussian_kernel

    kernel = make_2dgaussian_kernel(fwhm, size=2 * int(2 * fwhm) + 1).array
    profile = kernel.sum(axis=0) / kernel.sum()
    profile.flags.writeable = False
    return profile


def _detect(data, noise, *, nsigma, npixels, mask=None, fwhm=3.0, deblend=False):
    """Segment ``data`` above ``nsigma`` times ``noise`` after smoothing."""
    from photutils.segmentation import deblend_sources, detect_sources
    from photutils.utils.exceptions import NoDetectionsWarning
    from scipy import ndimage

    profile = _smoothing_profile(float(fwhm))
    smoothed = np.where(np.isfinite(data), data, 0.0).astype(float)
    for axis in (0, 1):
        smoothed = ndimage.correlate1d(smoothed, profile, axis=axis, mode="constant")
    threshold = nsigma * noise
    # An empty stamp is a normal outcome here, reported by returning None;
    # photutils' NoDetectionsWarning would only repeat it.
    with ignoring(NoDetectionsWarning):
        segm = detect_sources(smoothed, threshold, npixels, mask=mask)
    if segm is None:
        return None, smoothed
    if deblend and segm.nlabels > 0:
        segm = deblend_sources(
            smoothed,
            segm,
            npixels,
            n_levels=32,
            contrast=0.005,
            progress_bar=False,
        )
    return segm, smoothed


def estimate_psf(image, *, size=PSF_SIZE, max_stars=60, saturation=None):
    """Measure the PSF of a frame from its stars.

    Point sources are found with photutils segmentation; those that are
    isolated, unsaturated, round, bright (signal-to-noise above 50) and on the
    narrow-size locus of the brightest compact sources are stacked.

    Parameters
    ----------
    image : `~picasso_astro.images.BandImage`
        Preferably a whole frame (many stars).
    size : int
        Odd size of the PSF image.
    max_stars : int
        At most this many stars (the brightest usable ones) are stacked.
    saturation : float, optional
        Peak in nanomaggies above which a star is not used.  For SDSS frames
        it is derived from the calibration and sky in ``meta``.

    Returns
    -------
    psf : 2D `~numpy.ndarray`
        Unit sum, centred.
    fwhm : float
        FWHM in arcsec (median of the core Gaussian fits of the stars).
    nstars : int
        Stars used.

    Raises
    ------
    PicassoInputError
        If fewer than three usable stars are found.
    """
    from photutils.segmentation import SourceCatalog

    from . import _psf
    from .sdss import SATURATION_COUNTS

    data = np.where(image.bad_pixels(), np.nan, image.data)
    noise = image.noise
    if noise is None:
        from astropy.stats import mad_std

        noise = np.full(data.shape, mad_std(data, ignore_nan=True))
    counts_peak = None
    if saturation is None and "calib" in image.meta and "sky" in image.meta:
        calib = np.asarray(image.meta["calib"])[np.newaxis, :]
        counts_peak = data / calib + np.asarray(image.meta["sky"]) / calib
    segm, _ = _detect(
        data, noise, nsigma=5.0, npixels=5, mask=image.bad_pixels(), fwhm=2.0
    )
    if segm is None:
        msg = "no sources found to measure the PSF on; give psf_fwhm or a psField"
        raise PicassoInputError(msg)
    cat = SourceCatalog(
        np.where(np.isfinite(data), data, 0.0), segm, error=noise, progress_bar=False
    )
    flux = np.asarray(cat.segment_flux)
    flux_err = np.asarray(cat.segment_flux_err)
    peak = np.asarray(cat.max_value)
    fwhm = np.asarray(cat.fwhm.value)
    ell = np.asarray(cat.ellipticity.value)
    yc, xc = np.asarray(cat.y_centroid), np.asarray(cat.x_centroid)
    ny, nx = data.shape
    edge = size // 2 + 4
    ok = (
        np.isfinite(flux)
        & (flux > 50 * flux_err)
        & (ell < 0.2)
        & (xc > edge)
        & (xc < nx - 1 - edge)
        & (yc > edge)
        & (yc < ny - 1 - edge)
    )
    if counts_peak is not None:
        iy = np.clip(np.round(yc).astype(int), 0, ny - 1)
        ix = np.clip(np.round(xc).astype(int), 0, nx - 1)
        ok &= counts_peak[iy, ix] < SATURATION_COUNTS
    elif saturation is not None:
        ok &= peak < saturation
    # Isolated: no other source's centroid within the stamp.
    if np.count_nonzero(ok) > 1:
        from scipy.spatial import cKDTree

        tree = cKDTree(np.c_[yc, xc])
        counts = tree.query_ball_point(
            np.c_[yc, xc], r=size / 2 + 2, return_length=True
        )
        ok &= counts == 1
    if np.count_nonzero(ok) < 3:
        msg = (
            f"only {np.count_nonzero(ok)} isolated unsaturated stars found in the "
            f"{image.band}-band image; give psf_fwhm or a psField"
        )
        raise PicassoInputError(msg)
    # Stars: the tight locus at the smallest sizes among compact sources.
    sizes = fwhm[ok]
    locus = np.percentile(sizes, 25)
    ok &= np.abs(fwhm - locus) < 0.15 * locus
    index = np.flatnonzero(ok)
    index = index[np.argsort(-flux[index])][:max_stars]
    psf = _psf.stack_stars(np.nan_to_num(data), np.c_[yc[index], xc[index]], size=size)
    if psf is None or len(index) < 3:
        msg = (
            f"too few usable stars in the {image.band}-band image to measure "
            "the PSF; give psf_fwhm or a psField"
        )
        raise PicassoInputError(msg)
    fwhms = []
    half = 7
    for j in index:
        iy, ix = int(np.rint(yc[j])), int(np.rint(xc[j]))
        stamp = data[iy - half : iy + half + 1, ix - half : ix + half + 1]
        fwhms.append(_psf.fit_fwhm(stamp)[0])
    return psf, float(np.nanmedian(fwhms) * PIXEL_SCALE), len(index)


def psf_for_band(image, *, position=None, psfield=None, psf_fwhm=None, size=PSF_SIZE):
    """Return the PSF of one band: psField, else stars in the frame, else FWHM.

    Parameters
    ----------
    image : `~picasso_astro.images.BandImage`
        The whole frame (stars are measured on it).
    position : `~astropy.coordinates.SkyCoord`, optional
        Where the PSF is wanted (for a psField's position-dependent PSF).
    psfield : `~picasso_astro.sdss.PSField`, str or `~pathlib.Path`, optional
        When given, the PSF is reconstructed from it.
    psf_fwhm : float, dict or `~astropy.units.Quantity`, optional
        FWHM in arcsec (one value or one per band): a Gaussian PSF, used when
        neither a psField nor enough stars are available.
    size : int
        Odd size of the PSF image.

    Returns
    -------
    psf : 2D `~numpy.ndarray`
    fwhm : float
        In arcsec.
    source : str
        ``"psField"``, ``"image"`` (a PSF already attached), ``"stars"`` or
        ``"fwhm"``.
    """
    from . import _psf
    from .sdss import PSField, read_psfield

    if psfield is not None:
        if not isinstance(psfield, PSField):
            psfield = read_psfield(psfield)
        if position is not None and image.wcs is not None:
            x, y = image.wcs.world_to_pixel(position)
        else:
            y, x = (np.asarray(image.shape) - 1) / 2
        psf = psfield.psf(image.band, float(y), float(x))
        fwhm = _psf.psf_fwhm(psf)[0] * PIXEL_SCALE
        return _psf.resize_odd(psf, size), float(fwhm), "psField"
    if image.psf is not None:
        fwhm = image.psf_fwhm
        if fwhm is None:
            fwhm = _psf.psf_fwhm(image.psf)[0] * PIXEL_SCALE
        source = image.meta.get("psf_from", "image")
        return _psf.resize_odd(image.psf, size), float(fwhm), source
    fwhm_value = psf_fwhm
    if isinstance(fwhm_value, dict):
        fwhm_value = fwhm_value.get(image.band)
    if hasattr(fwhm_value, "unit"):
        fwhm_value = fwhm_value.to_value("arcsec")
    try:
        psf, fwhm, nstars = estimate_psf(image, size=size)
    except PicassoInputError:
        if fwhm_value is None:
            raise
    else:
        # Cache on the frame: every other galaxy in it reuses the stars' PSF.
        image.psf, image.psf_fwhm = psf, fwhm
        image.meta["psf_from"] = f"stars ({nstars})"
        return psf, fwhm, image.meta["psf_from"]
    psf = _psf.gaussian_psf(float(fwhm_value) / PIXEL_SCALE, size)
    return psf, float(fwhm_value), "fwhm"


def resolve_cutout_size(size, *, half_light_radius=None, pixel_scale=PIXEL_SCALE):
    """Turn a cutout-size convention into a number of pixels.

    Parameters
    ----------
    size : int, `~astropy.units.Quantity` or dict
        Pixels (int), an angle (Quantity), or the model config's convention:
        ``{"pixels": 256}`` or ``{"half_light_radii": 10}`` (the cutout spans
        that many half-light radii of the galaxy).
    half_light_radius : float or `~astropy.units.Quantity`, optional
        The galaxy's half-light radius (arcsec if a float); needed for the
        ``half_light_radii`` convention.
    pixel_scale : float
        Arcsec per pixel.

    Returns
    -------
    npix : int
    """
    import astropy.units as u

    if isinstance(size, dict):
        if "pixels" in size:
            return resolve_cutout_size(int(size["pixels"]))
        if "half_light_radii" in size:
            if half_light_radius is None or not np.isfinite(
                u.Quantity(half_light_radius, u.arcsec).value
            ):
                msg = (
                    "the model's cutouts span a multiple of the galaxy's "
                    "half-light radius: give each target's half-light radius "
                    "(e.g. a 'petroR50_r' column in arcsec)"
                )
                raise PicassoInputError(msg)
            radius = u.Quantity(half_light_radius, u.arcsec).to_value(u.arcsec)
            npix = int(np.ceil(float(size["half_light_radii"]) * radius / pixel_scale))
            return max(npix, 16)
        msg = (
            f"unknown cutout-size convention {size!r}; "
            "use 'pixels' or 'half_light_radii'"
        )
        raise PicassoInputError(msg)
    if hasattr(size, "unit"):
        return int(np.rint(size.to_value(u.arcsec) / pixel_scale))
    npix = int(size)
    if npix < 8:
        msg = f"cutout size must be at least 8 pixels, not {size!r}"
        raise PicassoInputError(msg)
    return npix


def _cut(image, position, size, *, meta_extra=None):
    """Cutout2D of every plane of a BandImage; outside the frame is masked."""
    from astropy.nddata import Cutout2D

    from .images import BandImage

    data = Cutout2D(
        image.data,
        position,
        size,
        wcs=image.wcs,
        mode="partial",
        fill_value=np.nan,
        copy=True,
    )
    slices = data.slices_original
    cut_slices = data.slices_cutout

    def plane(array, fill):
        out = np.full(data.shape, fill, dtype=array.dtype)
        out[cut_slices] = array[slices]
        return out

    outside = plane(np.zeros(image.shape, dtype=bool), True)
    mask = outside.copy()
    if image.mask is not None:
        mask |= plane(image.mask, True)
    noise = plane(image.noise, np.nan) if image.noise is not None else None
    meta = {k: v for k, v in image.meta.items() if not isinstance(v, np.ndarray)}
    meta["cutout_origin"] = tuple(int(v) for v in data.origin_original)
    meta.update(meta_extra or {})
    cut = BandImage(
        image.band,
        data.data,
        wcs=data.wcs,
        noise=noise,
        mask=mask,
        psf=image.psf,
        psf_fwhm=image.psf_fwhm,
        meta=meta,
    )
    return cut, data


def cutout_bands(images, position, size, *, reference_band="r", margin=8):
    """Cut all bands around a position and put them on the reference band's grid.

    The reference band is cut with `~astropy.nddata.Cutout2D` in
    ``mode="partial"``: a target near a frame edge keeps its place at the
    centre of the cutout, and the part outside the frame is NaN and masked
    (never a shifted cutout).  The other bands are cut a little larger and
    reprojected onto that grid (`align_bands`).

    Parameters
    ----------
    images : dict of str to `~picasso_astro.images.BandImage`
        Whole frames (or any images with celestial WCS).
    position : `~astropy.coordinates.SkyCoord`
    size : int
        Cutout size in pixels (square).
    reference_band : str
    margin : int
        Extra pixels cut around the non-reference bands before reprojection.

    Returns
    -------
    cutouts : dict of str to `~picasso_astro.images.BandImage`
        On one grid; ``meta["cutout_origin"]`` is the reference cutout's
        lower-left pixel in its frame.
    """
    reference = images[reference_band]
    if reference.wcs is None:
        msg = "the reference band has no WCS: cutouts around sky positions need one"
        raise PicassoInputError(msg)
    cuts = {}
    ref_cut, _ = _cut(reference, position, size)
    if ref_cut.mask.all():
        msg = (
            f"position ({position.ra.deg:.5f}, {position.dec.deg:+.5f}) is not on "
            f"the {reference_band}-band image"
        )
        raise PicassoInputError(msg)
    for band, image in images.items():
        if band == reference_band:
            cuts[band] = ref_cut
        else:
            cuts[band], _ = _cut(image, position, size + 2 * margin)
    return align_bands(cuts, reference_band=reference_band)


def subtract_background(image, *, box_size=64, filter_size=3, source_mask=None):
    """Remove the residual background with `photutils.background.Background2D`.

    Sources are detected (2 sigma, dilated) and masked before the background
    is estimated, so that galaxy light is not taken for sky.

    Parameters
    ----------
    image : `~picasso_astro.images.BandImage`
    box_size : int
        Background mesh size in pixels.
    filter_size : int
        Median filter size in meshes.
    source_mask : 2D bool `~numpy.ndarray`, optional
        Pixels to exclude besides the detected sources.

    Returns
    -------
    image : `~picasso_astro.images.BandImage`
        A new image with the background subtracted.
    info : dict
        ``median`` and ``rms`` of the background in nanomaggies, box size.
    """
    from photutils.background import Background2D, MedianBackground
    from scipy import ndimage

    from .images import BandImage

    bad = image.bad_pixels()
    noise = image.noise
    if noise is None:
        from astropy.stats import mad_std

        noise = np.full(image.shape, mad_std(image.data[~bad]))
    noise = np.where(np.isfinite(noise), noise, np.nanmedian(noise))
    segm, _ = _detect(image.data, noise, nsigma=2.0, npixels=10, mask=bad)
    mask = bad.copy()
    if segm is not None:
        mask |= ndimage.binary_dilation(segm.data > 0, iterations=5)
    if source_mask is not None:
        mask |= source_mask
    box = int(min(box_size, *image.shape))
    try:
        bkg = Background2D(
            np.where(bad, 0.0, image.data),
            box,
            mask=mask,
            coverage_mask=bad if bad.any() else None,
            filter_size=filter_size,
            bkg_estimator=MedianBackground(),
            exclude_percentile=50.0,
        )
    except ValueError:
        # Too few unmasked pixels in every box (a galaxy filling the cutout):
        # fall back to one sigma-clipped median over the unmasked pixels.
        from astropy.stats import sigma_clipped_stats

        keep = ~mask if (~mask).sum() > 100 else ~bad
        _, level, _ = sigma_clipped_stats(image.data[keep])
        background = np.full(image.shape, level)
        info = {"median": float(level), "rms": 0.0, "box_size": None}
    else:
        background = bkg.background
        info = {
            "median": float(bkg.background_median),
            "rms": float(np.std(background[~bad])) if (~bad).any() else 0.0,
            "box_size": box,
        }
    data = np.where(bad, np.nan, image.data - background)
    meta = dict(image.meta, background=info)
    out = BandImage(
        image.band,
        data,
        wcs=image.wcs,
        noise=image.noise,
        mask=image.mask,
        psf=image.psf,
        psf_fwhm=image.psf_fwhm,
        meta=meta,
    )
    return out, info


def mask_sources(images, *, centre=None, nsigma=2.0, npixels=10, psf_fwhm=None):
    """Mask foreground stars and neighbours while keeping the target whole.

    Sources are detected on the inverse-variance weighted sum of the bands and
    deblended (photutils ``detect_sources`` and ``deblend_sources``).  The
    target is the source under the cutout centre: its segment (before
    deblending) is kept, except for deblended children that are point-like
    and off centre (stars projected on the galaxy) or lie far beyond the
    central child's radius (neighbours merged with it in crowded fields).
    Every other source is masked, grown by a PSF FWHM; the central child is
    never masked.

    Parameters
    ----------
    images : dict of str to `~picasso_astro.images.BandImage`
        Aligned, background-subtracted bands.
    centre : tuple of float, optional
        ``(y, x)`` of the target; the cutout centre by default.
    nsigma, npixels : float, int
        Detection threshold and minimum area.
    psf_fwhm : float, optional
        PSF FWHM in arcsec (sets the point-source criterion and the growth).

    Returns
    -------
    source_mask : 2D bool `~numpy.ndarray`
        True on pixels of other sources.
    target : 2D bool `~numpy.ndarray`
        The target's pixels (its segment less the masked children).
    info : dict
        Numbers of masked sources and stars, masked fraction.
    """
    from photutils.segmentation import SourceCatalog
    from scipy import ndimage

    bands = list(images)
    shape = images[bands[0]].shape
    bad = np.zeros(shape, dtype=bool)
    num = np.zeros(shape)
    var = np.zeros(shape)
    for band in bands:
        image = images[band]
        bad |= image.bad_pixels()
        noise = image.noise
        if noise is None:
            from astropy.stats import mad_std

            noise = np.full(shape, mad_std(image.data, ignore_nan=True))
        w = 1.0 / np.where(np.isfinite(noise) & (noise > 0), noise, np.inf) ** 2
        num += np.where(np.isfinite(image.data), image.data, 0.0) * w
        var += w
    detection = np.where(var > 0, num / np.where(var > 0, var, 1), 0.0)
    detection_noise = np.where(var > 0, 1 / np.sqrt(np.where(var > 0, var, 1)), 1.0)
    fwhm_pix = (psf_fwhm or 1.4) / PIXEL_SCALE
    ny, nx = shape
    cy, cx = centre if centre is not None else ((ny - 1) / 2, (nx - 1) / 2)
    iy, ix = int(np.rint(cy)), int(np.rint(cx))
    parents, smoothed = _detect(
        detection, detection_noise, nsigma=nsigma, npixels=npixels, mask=bad
    )
    info = {"n_masked_sources": 0, "n_masked_stars_on_target": 0}
    if parents is None:
        info["masked_fraction"] = 0.0
        return np.zeros(shape, bool), np.zeros(shape, bool), info
    target_label = _label_at(parents.data, iy, ix, radius=fwhm_pix)
    target = parents.data == target_label if target_label else np.zeros(shape, bool)
    try:
        from photutils.segmentation import deblend_sources

        # Only the target's children are used: deblending the other sources,
        # which are masked whole, would cost most of the time in a crowded
        # field and change nothing.
        children = parents
        if target_label:
            # photutils says when it falls back from exponential to linear
            # thresholds for a faint segment: routine, and not the user's to fix.
            with ignoring(message="The deblending mode"):
                children = deblend_sources(
                    smoothed, parents, npixels, labels=[target_label], n_levels=32,
                    contrast=0.005, progress_bar=False,
                )  # fmt: skip
        info["deblended"] = True
    except ImportError:
        # photutils needs scikit-image to deblend; without it, stars projected
        # on the target cannot be separated from it and stay unmasked.
        children = parents
        info["deblended"] = False
    others = (parents.data > 0) & ~target
    info["n_masked_sources"] = len(np.unique(parents.data[others]))
    if target_label:
        # Deblended children of the target's segment other than the central
        # one: stars projected on the galaxy (point-like, off centre) and, in
        # crowded fields where everything merges at the detection threshold,
        # separate objects (far beyond the central child's own radius).  The
        # others (clumps and arms of the target itself) stay unmasked.
        inside = np.unique(children.data[target])
        inside = inside[inside > 0]
        target_child = _label_at(children.data, iy, ix, radius=fwhm_pix)
        if len(inside) > 1:
            cat = SourceCatalog(
                detection, children, error=detection_noise, progress_bar=False
            )
            core_area = np.count_nonzero(children.data == target_child)
            far = max(3.0 * np.sqrt(core_area / np.pi), 3.0 * fwhm_pix)
            for label in inside:
                if label == target_child:
                    continue
                src = cat.select_label(label)
                dist = np.hypot(src.y_centroid - cy, src.x_centroid - cx)
                star = (
                    src.fwhm.value < 1.5 * fwhm_pix
                    and dist > 2 * fwhm_pix
                    and src.ellipticity.value < 0.3
                )
                if star or dist > far:
                    piece = children.data == label
                    others |= piece
                    target &= ~piece
                    info["n_masked_sources"] += 1
                    info["n_masked_stars_on_target"] += int(bool(star))
    grow = max(int(np.ceil(fwhm_pix)), 1)
    source_mask = ndimage.binary_dilation(others, iterations=grow)
    # The target's own central segment is never masked by a neighbour's growth.
    if target_label:
        core = children.data == _label_at(children.data, iy, ix, radius=fwhm_pix)
        source_mask &= ~core
    info["masked_fraction"] = float(source_mask.mean())
    info["target_found"] = bool(target_label)
    return source_mask, target, info


#: `prepare_target` has an option of the same name.
_mask_sources = mask_sources


def _label_at(labels, iy, ix, *, radius):
    """Label of the segment at (iy, ix), else the nearest within ``radius``."""
    ny, nx = labels.shape
    if 0 <= iy < ny and 0 <= ix < nx and labels[iy, ix] > 0:
        return int(labels[iy, ix])
    r = int(np.ceil(radius))
    y0, y1 = max(iy - r, 0), min(iy + r + 1, ny)
    x0, x1 = max(ix - r, 0), min(ix + r + 1, nx)
    sub = labels[y0:y1, x0:x1]
    if not (sub > 0).any():
        return 0
    yy, xx = np.nonzero(sub)
    k = np.argmin(np.hypot(yy + y0 - iy, xx + x0 - ix))
    return int(sub[yy[k], xx[k]])


_KERNEL_CACHE = ContentCache(maxsize=64)


def matching_kernel(source_psf, target_psf, *, windows=None):
    """Make the kernel that turns ``source_psf`` into ``target_psf``.

    Kernels from the ratio of Fourier transforms (photutils ``make_kernel``,
    formerly ``create_matching_kernel``) with several windows (Tukey and
    split cosine bell of different widths), and a Gaussian kernel of the
    width difference, are tried; the one with the smallest residual
    ``|source * kernel - target|`` among those whose ringing (negative over
    positive kernel sum) is below `MAX_RINGING` is kept.

    Parameters
    ----------
    source_psf, target_psf : 2D `~numpy.ndarray`
        Same odd shape, centred, unit sum.
    windows : dict of str to callable, optional
        Candidate windows by name.

    Returns
    -------
    kernel : 2D `~numpy.ndarray`
    info : dict
        ``method`` (``"fourier ratio"`` or ``"gaussian"``), ``window``,
        ``residual`` (L1 of the matched PSF minus the target) and ``ringing``.
    """
    if windows is not None:
        return _matching_kernel(source_psf, target_psf, windows)
    # The galaxies of a field share their PSFs: one kernel serves them all.
    key = ContentCache.key(source_psf, target_psf)
    kernel, info = _KERNEL_CACHE.get(
        key, lambda: _matching_kernel(source_psf, target_psf, None)
    )
    return kernel.copy(), dict(info)


def _matching_kernel(source_psf, target_psf, windows):
    from scipy.signal import fftconvolve

    from . import _psf

    try:
        from photutils.psf_matching import (
            SplitCosineBellWindow,
            TukeyWindow,
        )
        from photutils.psf_matching import make_kernel as _make
    except ImportError:  # photutils < 3
        from photutils.psf import (
            SplitCosineBellWindow,
            TukeyWindow,
        )
        from photutils.psf import create_matching_kernel as _make

    if windows is None:
        windows = {
            f"TukeyWindow(alpha={a})": TukeyWindow(alpha=a)
            for a in (0.3, 0.5, 0.7, 0.85, 1.0)
        }
        windows["SplitCosineBellWindow(alpha=0.4, beta=0.3)"] = SplitCosineBellWindow(
            alpha=0.4, beta=0.3
        )
    candidates = []
    for name, window in windows.items():
        kernel = _make(source_psf, target_psf, window=window)
        candidates.append((kernel, {"method": "fourier ratio", "window": name}))
    # A Gaussian kernel with the width difference: it cannot ring, and wins
    # when the PSFs are nearly equal or noisy (stacked stars).
    fwhm_s = _psf.psf_fwhm(source_psf)[0]
    fwhm_t = _psf.psf_fwhm(target_psf)[0]
    width = np.sqrt(max(fwhm_t**2 - fwhm_s**2, 0.0))
    if width > 0.3:
        kernel = _psf.gaussian_psf(width, source_psf.shape[0])
    else:
        kernel = np.zeros_like(source_psf)
        kernel[kernel.shape[0] // 2, kernel.shape[1] // 2] = 1.0
    candidates.append((kernel, {"method": "gaussian", "window": None}))
    best = None
    for kernel, info in candidates:
        matched = fftconvolve(source_psf, kernel, mode="same")
        info["residual"] = float(np.abs(matched - target_psf).sum())
        info["ringing"] = _psf.ringing(kernel)
        score = (info["ringing"] > MAX_RINGING, info["residual"])
        if best is None or score < best[0]:
            best = (score, kernel, info)
    return best[1], best[2]


def match_psfs(images, psfs, fwhms):
    """Convolve every band to the broadest band's PSF.

    Parameters
    ----------
    images : dict of str to `~picasso_astro.images.BandImage`
        Aligned, background-subtracted bands.
    psfs : dict of str to 2D `~numpy.ndarray`
        Same-shape, centred, unit-sum PSFs on the images' pixel scale.
    fwhms : dict of str to float
        FWHM per band in arcsec (picks the broadest).

    Returns
    -------
    matched : dict of str to `~picasso_astro.images.BandImage`
    info : dict
        ``target_band``, ``target_fwhm`` and per band the kernel's window,
        residual and ringing.
    """
    from scipy import ndimage
    from scipy.signal import fftconvolve

    from .images import BandImage

    target_band = max(fwhms, key=fwhms.get)
    target_psf = psfs[target_band]
    info = {"target_band": target_band, "target_fwhm": float(fwhms[target_band])}
    matched = {}
    for band, image in images.items():
        if band == target_band:
            matched[band] = BandImage(
                band, image.data, wcs=image.wcs, noise=image.noise, mask=image.mask,
                psf=target_psf, psf_fwhm=fwhms[target_band], meta=dict(image.meta),
            )  # fmt: skip
            info[band] = {"window": None, "residual": 0.0, "ringing": 0.0}
            continue
        kernel, kinfo = matching_kernel(psfs[band], target_psf)
        info[band] = kinfo
        bad = image.bad_pixels()
        data = fftconvolve(np.where(bad, 0.0, image.data), kernel, mode="same")
        noise = image.noise
        if noise is not None:
            noise = np.sqrt(
                fftconvolve(np.where(bad, 0.0, noise**2), kernel**2, mode="same").clip(
                    0
                )
            )
        grow = max(int(np.ceil(fwhms[target_band] / PIXEL_SCALE)), 1)
        mask = ndimage.binary_dilation(bad, iterations=grow) if bad.any() else bad
        matched[band] = BandImage(
            band, np.where(mask, np.nan, data), wcs=image.wcs, noise=noise,
            mask=mask, psf=target_psf, psf_fwhm=fwhms[target_band],
            meta=dict(image.meta, psf_matched_to=target_band),
        )  # fmt: skip
    return matched, info


@dataclass
class PreparedTarget:
    """One galaxy, cut out of its frames and ready for the model.

    Attributes
    ----------
    name : str
        The target's name (or its coordinates).
    coord : `~astropy.coordinates.SkyCoord`
    images : dict of str to `~picasso_astro.images.BandImage`
        The five bands on one grid, preprocessed.
    wcs : `~astropy.wcs.WCS`
        The cutout grid (the reference band's frame WCS, shifted).
    footprint : 2D bool `~numpy.ndarray`
        True where every band has data (False off the frame edges).
    mask : 2D bool `~numpy.ndarray`
        True where a pixel must not be used: off the footprint, bad, or
        another source (star or neighbour).
    source_mask : 2D bool `~numpy.ndarray`
        The masked stars and neighbours alone.
    steps : dict
        What was done, for the output's ``meta``.
    """

    name: str
    coord: SkyCoord
    images: dict
    wcs: WCS
    footprint: np.ndarray
    mask: np.ndarray
    source_mask: np.ndarray
    steps: dict = field(default_factory=dict)

    def cube(self):
        """Return the ``(5, ny, nx)`` nanomaggy cube and its mask (`stack_bands`)."""
        cube, mask = stack_bands(self.images)
        mask = mask | self.mask
        cube[:, mask] = 0.0
        return cube, mask

    def model_input(self, *, softening=None):
        """Return the network's input channels (`to_model_input`)."""
        cube, mask = self.cube()
        return to_model_input(cube, mask, softening=softening)


def prepare_target(
    images,
    coord,
    *,
    size=256,
    name=None,
    half_light_radius=None,
    reference_band="r",
    background=True,
    mask_sources=True,
    match_psf=True,
    psf_fwhm=None,
    psfield=None,
    pad=64,
):
    """Cut one galaxy out of its frames and preprocess it.

    Steps, each recorded in ``steps`` and each can be switched off: cutout and
    reprojection of all bands onto the reference band's pixel grid; residual
    background (`subtract_background`); PSF of each band (psField, else stars
    in the frame, else ``psf_fwhm``) and matching to the broadest
    (`match_psfs`); masking of stars and neighbours (`mask_sources`).  The
    background and PSF matching work on a cutout ``pad`` pixels larger on each
    side, trimmed at the end, so that edges do not bias them.

    Parameters
    ----------
    images : dict of str to `~picasso_astro.images.BandImage`
        Whole frames (or large images) of the five bands, with WCS.  Mock
        frames go through the same path.
    coord : `~astropy.coordinates.SkyCoord`
        The target's position (scalar).
    size : int, `~astropy.units.Quantity` or dict
        Cutout size convention (see `resolve_cutout_size`).
    name : str, optional
    half_light_radius : float or `~astropy.units.Quantity`, optional
        Arcsec; for the ``half_light_radii`` size convention.
    reference_band : str
        The band whose pixel grid the cutout uses.
    background, mask_sources, match_psf : bool
        Switch the steps on or off.
    psf_fwhm : float, dict or `~astropy.units.Quantity`, optional
        FWHM in arcsec, used when neither a psField nor stars give the PSF.
    psfield : `~picasso_astro.sdss.PSField`, str or `~pathlib.Path`, optional
    pad : int
        Extra pixels on each side for background and PSF matching.

    Returns
    -------
    target : `PreparedTarget`
    """
    from astropy.nddata import Cutout2D

    from .images import BandImage
    from .sdss import read_psfield

    coord = SkyCoord(coord)
    if name is None:
        name = f"({coord.ra.deg:.5f}, {coord.dec.deg:+.5f})"
    missing = [band for band in BANDS if band not in images]
    if missing:
        msg = f"{name}: missing band(s) {', '.join(missing)}; all of ugriz are needed"
        raise PicassoInputError(msg)
    npix = resolve_cutout_size(size, half_light_radius=half_light_radius)
    steps = {"size": npix, "reference_band": reference_band}
    if not bool(_on_image(images[reference_band], coord)):
        msg = f"target {name} lies outside the {reference_band}-band frame"
        raise PicassoInputError(msg)

    big = npix + 2 * (pad if (background or match_psf) else 0)
    stamps = cutout_bands(images, coord, big, reference_band=reference_band)
    steps["reprojected"] = [b for b in BANDS if stamps[b].meta.get("reprojected_to")]

    # The final grid: Cutout2D of the reference frame at the final size.  Both
    # sizes have the same parity, so the padded stamp shares its pixel grid.
    final = Cutout2D(
        np.empty(images[reference_band].shape, dtype=np.uint8),
        coord,
        npix,
        wcs=images[reference_band].wcs,
        mode="partial",
        fill_value=0,
    )
    big_origin = stamps[reference_band].meta["cutout_origin"]
    off_x = final.origin_original[0] - big_origin[0]
    off_y = final.origin_original[1] - big_origin[1]
    inner = (slice(off_y, off_y + npix), slice(off_x, off_x + npix))

    if background:
        info = {}
        for band in BANDS:
            stamps[band], info[band] = subtract_background(stamps[band])
        steps["background"] = info
    else:
        steps["background"] = False

    if isinstance(psfield, str | Path):
        psfield = read_psfield(psfield)
    psfs, fwhms, sources = {}, {}, {}
    for band in BANDS:
        try:
            psfs[band], fwhms[band], sources[band] = psf_for_band(
                images[band], position=coord, psfield=psfield, psf_fwhm=psf_fwhm
            )
        except PicassoInputError as err:
            if match_psf:
                msg = f"{name}: {err}"
                raise PicassoInputError(msg) from err
            psfs[band], fwhms[band], sources[band] = None, None, None
    steps["psf_source"] = sources
    steps["psf_fwhm_arcsec"] = fwhms
    if match_psf:
        stamps, info = match_psfs(stamps, psfs, fwhms)
        steps["psf_matching"] = info
    else:
        steps["psf_matching"] = False

    trimmed = {}
    for band in BANDS:
        image = stamps[band]
        trimmed[band] = BandImage(
            band,
            image.data[inner],
            wcs=final.wcs,
            noise=None if image.noise is None else image.noise[inner],
            mask=None if image.mask is None else image.mask[inner],
            psf=image.psf if match_psf else psfs[band],
            psf_fwhm=image.psf_fwhm if match_psf else fwhms[band],
            meta=dict(image.meta, cutout_origin=tuple(map(int, final.origin_original))),
        )
    bad = np.zeros((npix, npix), dtype=bool)
    for band in BANDS:
        bad |= trimmed[band].bad_pixels()
    footprint = ~bad
    if mask_sources:
        # Detection on the padded stamp, so that sources cut by the edge are
        # seen whole; the target is at the stamp's centre.
        cy = (stamps[reference_band].shape[0] - 1) / 2
        centre = final.center_original
        x_c, y_c = images[reference_band].wcs.world_to_pixel(coord)
        cy = float(y_c) - big_origin[1]
        cx = float(x_c) - big_origin[0]
        source_mask, target, info = _mask_sources(
            stamps,
            centre=(cy, cx),
            psf_fwhm=max(v for v in fwhms.values() if v is not None)
            if any(v is not None for v in fwhms.values())
            else None,
        )
        del centre
        source_mask = source_mask[inner]
        info["target_area_pix"] = int(target[inner].sum())
        steps["source_mask"] = info
    else:
        source_mask = np.zeros((npix, npix), dtype=bool)
        steps["source_mask"] = False
    mask = bad | source_mask
    steps["footprint_fraction"] = float(footprint.mean())
    return PreparedTarget(
        name=name,
        coord=coord,
        images=trimmed,
        wcs=final.wcs,
        footprint=footprint,
        mask=mask,
        source_mask=source_mask,
        steps=steps,
    )


def _on_image(image, coord):
    ny, nx = image.shape
    x, y = image.wcs.world_to_pixel(coord)
    return (x >= -0.5) & (x <= nx - 0.5) & (y >= -0.5) & (y <= ny - 0.5)


def _parse_targets(targets):
    """Return (SkyCoord array, names, half-light radii or None)."""
    import astropy.units as u
    from astropy.table import Table

    if isinstance(targets, SkyCoord):
        coords = targets.reshape((1,)) if targets.isscalar else targets.ravel()
        return coords, [None] * len(coords), None
    if isinstance(targets, Table):
        cols = {c.lower(): c for c in targets.colnames}
        ra_col = cols.get("ra")
        dec_col = cols.get("dec")
        if ra_col is None or dec_col is None:
            msg = (
                "the target table needs 'ra' and 'dec' columns (degrees); "
                f"it has {', '.join(targets.colnames)}"
            )
            raise PicassoInputError(msg)
        ra, dec = targets[ra_col], targets[dec_col]
        ra = ra.quantity if getattr(ra, "unit", None) else np.asarray(ra) * u.deg
        dec = dec.quantity if getattr(dec, "unit", None) else np.asarray(dec) * u.deg
        coords = SkyCoord(ra, dec)
        name_col = next((cols[c] for c in ("name", "id", "objid") if c in cols), None)
        names = (
            [str(v) for v in targets[name_col]] if name_col else [None] * len(coords)
        )
        radius_col = next(
            (cols[c] for c in ("half_light_radius", "petror50_r", "r50") if c in cols),
            None,
        )
        radii = None
        if radius_col is not None:
            col = targets[radius_col]
            radii = (
                col.quantity.to_value(u.arcsec)
                if getattr(col, "unit", None)
                else np.asarray(col, dtype=float)
            )
        return coords, names, radii
    msg = (
        f"targets must be a SkyCoord or an astropy Table with ra/dec columns, "
        f"not {type(targets).__name__}"
    )
    raise TypeError(msg)


def prepare_targets(frames, targets, *, size=256, **kwargs):
    """Cut and preprocess many galaxies from SDSS frames, field by field.

    Each target is assigned to the frame that contains it; every frame is
    decompressed once and reused for all targets in it.

    Parameters
    ----------
    frames : str, `~pathlib.Path`, list, or dict
        A directory or list of SDSS frame files (grouped with
        `~picasso_astro.sdss.find_frames`), a dict of
        `~picasso_astro.sdss.SDSSField` (as `find_frames` returns), or a dict
        of five in-memory `~picasso_astro.images.BandImage` (mocks).
    targets : `~astropy.coordinates.SkyCoord` or `~astropy.table.Table`
        Positions; a table needs ``ra`` and ``dec`` (degrees) and may have
        ``name`` and ``half_light_radius`` (arcsec) or ``petroR50_r``.
    size : int, `~astropy.units.Quantity` or dict
        Cutout size convention (see `resolve_cutout_size`), e.g. the model
        config's.
    **kwargs
        Passed to `prepare_target` (``background``, ``mask_sources``,
        ``match_psf``, ``psf_fwhm``, ``psfield``, ...).

    Yields
    ------
    target : `PreparedTarget`
        In the order of ``targets``; ``steps["field"]`` names the frame.

    Raises
    ------
    PicassoInputError
        Before any work, if a target lies outside every frame (naming it).
    """
    from .images import BandImage
    from .sdss import SDSSField, assign_targets, find_frames

    coords, names, radii = _parse_targets(targets)
    if (
        isinstance(frames, dict)
        and frames
        and all(isinstance(v, BandImage) for v in frames.values())
    ):
        outside = [
            names[i] or f"target {i} ({c.ra.deg:.5f}, {c.dec.deg:+.5f})"
            for i, c in enumerate(coords)
            if not bool(_on_image(frames.get("r", next(iter(frames.values()))), c))
        ]
        if outside:
            msg = f"{'; '.join(outside)} lie(s) outside the images given"
            raise PicassoInputError(msg)
        assignment = [None] * len(coords)
        images_for = lambda _fld: frames  # noqa: E731
    else:
        if isinstance(frames, dict) and all(
            isinstance(v, SDSSField) for v in frames.values()
        ):
            fields = frames
        else:
            fields = find_frames(frames)
        assignment = assign_targets(coords, fields, names=names)
        images_for = lambda fld: fld.images()  # noqa: E731
    for index, coord in enumerate(coords):
        fld = assignment[index]
        options = dict(kwargs)
        if fld is not None and options.get("psfield") is None:
            options["psfield"] = fld.psfield_data()
        result = prepare_target(
            images_for(fld),
            coord,
            size=size,
            name=names[index],
            half_light_radius=None if radii is None else radii[index],
            **options,
        )
        if fld is not None:
            result.steps["field"] = fld.name
        yield result
