"""Sources in an image: detection, residual background, masks of other sources."""

import functools

import numpy as np
from astropy.stats import mad_std, sigma_clipped_stats
from scipy import ndimage

from ._warnings import ignoring
from .images import PIXEL_SCALE

__all__ = ["detect", "mask_sources", "subtract_background"]


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


def detect(data, noise, *, nsigma, npixels, mask=None, fwhm=3.0, deblend=False):
    """Segment ``data`` above ``nsigma`` times ``noise`` after smoothing."""
    from photutils.segmentation import deblend_sources, detect_sources
    from photutils.utils.exceptions import NoDetectionsWarning

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
    bad = image.bad_pixels()
    noise = image.noise
    if noise is None:
        noise = np.full(image.shape, mad_std(image.data[~bad]))
    noise = np.where(np.isfinite(noise), noise, np.nanmedian(noise))
    # Sources are found above a first estimate of the sky, then again above
    # the first background: a sky of a few sigma is not taken for a source.
    _, level, _ = sigma_clipped_stats(image.data[~bad]) if (~bad).any() else (0, 0, 0)
    background = np.full(image.shape, level)
    for _ in range(2):
        background, info, _ = _background(
            image.data, background, noise, bad, source_mask, box_size, filter_size
        )
    data = np.where(bad, np.nan, image.data - background)
    return image.replace(data=data, meta=dict(image.meta, background=info)), info


def _background(data, sky, noise, bad, source_mask, box_size, filter_size):
    """One pass: mask sources above ``sky``, then fit `Background2D` to the rest."""
    from photutils.background import Background2D, MedianBackground

    segm, _ = detect(data - sky, noise, nsigma=2.0, npixels=10, mask=bad)
    mask = bad.copy()
    if segm is not None:
        mask |= ndimage.binary_dilation(segm.data > 0, iterations=5)
    if source_mask is not None:
        mask |= source_mask
    box = int(min(box_size, *data.shape))
    try:
        bkg = Background2D(
            np.where(bad, 0.0, data),
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
        keep = ~mask if (~mask).sum() > 100 else ~bad
        _, level, _ = sigma_clipped_stats(data[keep])
        info = {"median": float(level), "rms": 0.0, "box_size": None}
        return np.full(data.shape, level), info, mask
    background = bkg.background
    info = {
        "median": float(bkg.background_median),
        "rms": float(np.std(background[~bad])) if (~bad).any() else 0.0,
        "box_size": box,
    }
    return background, info, mask


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
    parents, smoothed = detect(
        detection, detection_noise, nsigma=nsigma, npixels=npixels, mask=bad
    )
    info = {"n_masked_sources": 0, "n_masked_stars_on_target": 0}
    if parents is None:
        info.update(masked_fraction=0.0, target_found=False, deblended=False)
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
