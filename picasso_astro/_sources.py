"""Sources in an image: detection, residual background, masks of other sources."""

import functools
from dataclasses import dataclass

import numpy as np
from astropy.stats import gaussian_fwhm_to_sigma, mad_std, sigma_clipped_stats
from scipy import ndimage

from ._warnings import ignoring
from .images import PIXEL_SCALE, TYPICAL_FWHM

__all__ = [
    "DEFAULT_ISOPHOTE",
    "SourceMap",
    "classify_sources",
    "detect",
    "estimate_background",
    "mask_sources",
    "subtract_background",
]


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


def estimate_background(image, *, box_size=64, filter_size=3, source_mask=None):
    """Estimate the residual background with `photutils.background.Background2D`.

    Sources are detected (2 sigma, dilated) and masked before the background
    is estimated, so that galaxy light is not taken for sky.  The mesh of
    boxes starts at the image's first pixel: on a whole frame
    (`~picasso_astro.preprocess.field_backgrounds`) it is one fixed tiling, so
    that every cutout of the frame gets the same background values.

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
    background : 2D `~numpy.ndarray`
        The background in nanomaggies on the image's grid.
    info : dict
        ``median`` and ``rms`` of the background in nanomaggies, box size.
    """
    bad = image.bad_pixels()
    noise = image.noise
    if noise is None:
        noise = np.full(image.shape, mad_std(image.data[~bad]))
    finite = np.isfinite(noise)
    if not finite.all():
        noise = np.where(finite, noise, np.nanmedian(noise))
    # Sources are found above a first estimate of the sky, then again above
    # the first background: a sky of a few sigma is not taken for a source.
    level = _first_level(image.data, bad)
    background = np.full(image.shape, level)
    for _ in range(2):
        background, info, _ = _background(
            image.data, background, noise, bad, source_mask, box_size, filter_size
        )
    return background, info


#: Images of more pixels than this (whole frames) take the first estimate of
#: their sky from a regular sample of about this many pixels.
SKY_SAMPLE = 1_000_000


def _first_level(data, bad):
    """Return a first sigma-clipped estimate of the sky, to detect sources above.

    Only a seed: the background is then fitted above it twice.  On a whole
    frame, every third pixel of every third row gives it within a small
    fraction of the noise, ten times faster.
    """
    if data.size > SKY_SAMPLE:
        step = int(np.ceil(np.sqrt(data.size / SKY_SAMPLE))) + 1
        data, bad = data[::step, ::step], bad[::step, ::step]
    if not (~bad).any():
        return 0.0
    _, level, _ = sigma_clipped_stats(data[~bad])
    return level


def subtract_background(
    image, *, box_size=64, filter_size=3, source_mask=None, background=None
):
    """Remove the residual background (`estimate_background`).

    Parameters
    ----------
    image : `~picasso_astro.images.BandImage`
    box_size, filter_size, source_mask
        As for `~picasso_astro.preprocess.estimate_background`.
    background : tuple, optional
        ``(background, info)`` already estimated (e.g. on the whole frame
        the image was cut from, and cut as it was): subtracted as it is.

    Returns
    -------
    image : `~picasso_astro.images.BandImage`
        A new image with the background subtracted.
    info : dict
        ``median`` and ``rms`` of the background in nanomaggies, box size.
    """
    if background is None:
        background = estimate_background(
            image, box_size=box_size, filter_size=filter_size, source_mask=source_mask
        )
    background, info = background
    bad = image.bad_pixels()
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
    background = _background_image(bkg, box, data.shape, bad if bad.any() else None)
    info = {
        "median": float(bkg.background_median),
        "rms": float(np.std(background[~bad])) if (~bad).any() else 0.0,
        "box_size": box,
    }
    return background, info, mask


@functools.lru_cache(maxsize=64)
def _zoom_matrix(n, box_size):
    """Return the 1D operator of photutils' mesh zoom, ``(n * box_size, n)``.

    `Background2D` turns its mesh into an image with `scipy.ndimage.zoom`
    (cubic spline, ``mode="reflect"``, ``grid_mode=True``, by a factor of
    ``box_size``).  That zoom is separable and linear, so it is this matrix
    on each axis: its columns are the zoom of unit vectors.
    """
    matrix = ndimage.zoom(
        np.eye(n), (box_size, 1), order=3, mode="reflect", grid_mode=True
    )
    matrix.flags.writeable = False
    return matrix


#: Meshes of at least this many boxes a side are zoomed by `_zoom_matrix`.
#: scipy's 2D zoom is separable to rounding only on meshes this long: its
#: spline prefilter is approximate on shorter ones (1e-7 of the mesh's
#: range on 6 boxes), and those keep photutils' own zoom.
SEPARABLE_MESH = 12


def _background_image(bkg, box_size, shape, coverage_mask):
    """Return ``bkg.background``, on large meshes as two small matrix products.

    The same numbers as `photutils.background.Background2D.background` to
    rounding (a test checks it), ten times faster on a whole frame: the
    mesh is zoomed one axis at a time instead of by a 2D spline at every
    pixel.
    """
    mesh = np.asarray(bkg.background_mesh, dtype=float)
    if min(mesh.shape) < SEPARABLE_MESH:
        return bkg.background
    if np.ptp(mesh) == 0:
        image = np.full(shape, float(np.min(mesh)))
    else:
        rows = _zoom_matrix(mesh.shape[0], box_size)[: shape[0]]
        cols = _zoom_matrix(mesh.shape[1], box_size)[: shape[1]]
        image = (rows @ mesh) @ cols.T
        np.clip(image, np.min(mesh), np.max(mesh), out=image)
    if coverage_mask is not None:
        image[coverage_mask] = 0.0
    return image


#: Default isophote of the target's footprint, r-band mag per square arcsec.
DEFAULT_ISOPHOTE = 25.0
#: A source is point-like when its core's FWHM is below this many PSF FWHMs.
POINT_LIKE_FWHM = 1.5
#: ... and its light within one PSF FWHM is more than this share of that within
#: three (0.8 to 0.95 for stars; extended sources less).
POINT_CONCENTRATION = 0.7
#: A deblended piece of the target with more than this share of its central
#: piece's flux, beyond twice its half-light radius, is a companion galaxy.
COMPANION_FLUX = 0.05
#: Stars whose peak exceeds this many sigma get diffraction spikes masked too.
SPIKE_PEAK_SNR = 2000.0
#: Sources seen through the target are taken for stars only above this peak
#: S/N, and only if their core is at least this share of the PSF FWHM wide.
SEEN_THROUGH_MIN_SNR = 10.0
STAR_MIN_FWHM = 0.85
#: A source beside masked pixels above this peak S/N has a saturated core.
SATURATED_PEAK_SNR = 400.0


@dataclass
class SourceMap:
    """What is where in a cutout: the target, its footprint, stars, neighbours.

    Attributes
    ----------
    target : 2D bool `~numpy.ndarray`
        The target's detection segment, less the deblended pieces that are
        not the target.
    footprint : 2D bool `~numpy.ndarray`
        The target's pixels down to the isophote: its own connected region,
        with neighbours and stars cut out.
    neighbours, stars : 2D bool `~numpy.ndarray`
        Other galaxies (grown by a PSF FWHM) and point sources (grown to
        where their halo fades into the noise, with spikes for bright ones).
    info : dict
        Counts, fractions, the isophote reached, whether the target was
        found and whether it is point-like.
    """

    target: np.ndarray
    footprint: np.ndarray
    neighbours: np.ndarray
    stars: np.ndarray
    info: dict


def _detection_image(images):
    """Inverse-variance weighted mean of the bands, its noise and bad pixels."""
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
    return detection, detection_noise, bad


def classify_sources(
    images,
    *,
    centre=None,
    psf_fwhm=None,
    isophote=DEFAULT_ISOPHOTE,
    reference_band="r",
    nsigma=2.0,
    npixels=10,
):
    """Find the target, its footprint, and the stars and neighbours around it.

    Sources are detected on the inverse-variance weighted mean of the bands
    (photutils ``detect_sources``). The target is the source under
    ``centre``; its segment is deblended (``deblend_sources``), and pieces
    off centre that are stars (point-like; or point-like once the galaxy's
    light beneath them is taken off and either brighter than the target's
    centre or no bluer than the galaxy around them; or bright and cut by
    masked pixels, a saturated core) or that lie far beyond the central piece
    (neighbours merged with it) are taken out. Every
    other source is a star (point-like) or a neighbour, masked whole. The
    footprint is the target's connected region of the smoothed reference
    band above ``isophote`` (or above twice the smoothed noise where that is
    brighter), with the stars and neighbours cut out.

    Parameters
    ----------
    images : dict of str to `~picasso_astro.images.BandImage`
        Aligned, background-subtracted bands.
    centre : tuple of float, optional
        ``(y, x)`` of the target; the image centre by default.
    psf_fwhm : float, optional
        PSF FWHM in arcsec (`~picasso_astro.images.TYPICAL_FWHM` if unknown).
    isophote : float
        Surface brightness in the reference band, mag per square arcsec, to
        which the footprint reaches.
    reference_band : str
        The band of the isophote.
    nsigma, npixels : float, int
        Detection threshold and minimum area.

    Returns
    -------
    sources : `SourceMap`
    """
    detection, detection_noise, bad = _detection_image(images)
    shape = detection.shape
    fwhm_pix = (psf_fwhm or TYPICAL_FWHM) / PIXEL_SCALE
    ny, nx = shape
    cy, cx = centre if centre is not None else ((ny - 1) / 2, (nx - 1) / 2)
    iy, ix = int(np.rint(cy)), int(np.rint(cx))
    empty = np.zeros(shape, bool)
    info = {"n_masked_sources": 0, "n_masked_stars_on_target": 0, "n_stars": 0}
    parents, smoothed = detect(
        detection, detection_noise, nsigma=nsigma, npixels=npixels, mask=bad
    )
    if parents is None:
        info.update(
            masked_fraction=0.0, target_found=False, deblended=False, n_neighbours=0
        )
        return SourceMap(empty, empty.copy(), empty.copy(), empty.copy(), info)
    target_label = _label_at(parents.data, iy, ix, radius=fwhm_pix)
    target = parents.data == target_label if target_label else empty.copy()
    labels = parents.data.copy()
    children, info["deblended"] = _deblend_target(
        smoothed, parents, target_label, npixels
    )
    target_child = 0
    if target_label:
        target_child = _label_at(children.data, iy, ix, radius=fwhm_pix)
        # Give the target's pieces labels of their own among the parents'.
        offset = int(labels.max())
        labels[target] = children.data[target] + offset
        target_child += offset
    catalogue = _catalogue(detection, labels, detection_noise, fwhm_pix)
    core_area = np.count_nonzero(labels == target_child)
    far = max(3.0 * np.sqrt(core_area / np.pi), 3.0 * fwhm_pix)
    core_flux, core_r50 = _flux_and_r50(detection, labels == target_child, cy, cx)
    core = (
        catalogue.get(target_child, {}).get("peak_snr", np.inf),
        _blue_to_red(images, (iy, ix), fwhm_pix)[0],
    )
    central = labels == target_child if target_child else np.zeros(shape, bool)
    grow = max(int(np.ceil(fwhm_pix)), 1)
    neighbours = np.zeros(shape, bool)
    stars = np.zeros(shape, bool)
    n_neighbours = 0
    for label, row in catalogue.items():
        if label == target_child:
            # A stricter limit: compact galaxies are common targets.
            info["target_point_like"] = _point_like(row, fwhm_pix, limit=1.25)
            continue
        piece = labels == label
        on_target = bool(target[piece].any())
        point_like = _point_like(row, fwhm_pix)
        seen_through = False
        if on_target:
            dist = np.hypot(row["y"] - cy, row["x"] - cx)
            star = point_like and dist > 2 * fwhm_pix
            # A piece with a good share of the target's light beyond twice
            # its half-light radius is another galaxy seen through it.
            bright = detection[piece].sum() > COMPANION_FLUX * core_flux
            companion = bright and dist > max(2.0 * core_r50, 2.0 * fwhm_pix)
            if not (star or companion or dist > far):
                if dist <= 2 * fwhm_pix or not _star_seen_through(
                    images, detection, row, piece, core, bad, fwhm_pix
                ):
                    continue  # a clump or arm of the target itself
                # A star seen through the galaxy, whose piece holds much of the
                # galaxy around it: only the star's core, grown to its halo,
                # and what lies far out are not the target.
                seen_through = star = True
                target &= ~(piece & ~_within(shape, (cy, cx), far))
                star_core = piece & _within(shape, (row["y"], row["x"]), fwhm_pix)
                piece = _star_mask(star_core, row, fwhm_pix, grow) & ~central
            target &= ~piece
            info["n_masked_stars_on_target"] += int(star)
            point_like = star
        info["n_masked_sources"] += 1
        if point_like:
            info["n_stars"] += 1
            stars |= piece if seen_through else _star_mask(piece, row, fwhm_pix, grow)
        else:
            n_neighbours += 1
            neighbours |= piece
    neighbours = ndimage.binary_dilation(neighbours, iterations=grow)
    # The target's own central piece is never masked by another's growth.
    neighbours &= ~central
    stars &= ~central
    owned = _owned_by(labels, target)
    footprint, reached = _footprint(
        images[reference_band], target, neighbours | stars, owned, (iy, ix),
        fwhm_pix, isophote, bad,
    )  # fmt: skip
    info.update(
        n_neighbours=n_neighbours,
        masked_fraction=float((neighbours | stars).mean()),
        target_found=bool(target_label),
        footprint_area_pix=int(footprint.sum()),
        isophote_reached=reached,
    )
    info.setdefault("target_point_like", False)
    return SourceMap(target, footprint, neighbours, stars, info)


def _flux_and_r50(image, region, cy, cx):
    """Return the flux of ``region`` and the radius about (cy, cx) holding half."""
    if not region.any():
        return 0.0, 0.0
    yy, xx = np.nonzero(region)
    flux = np.clip(image[yy, xx], 0, None)
    order = np.argsort(np.hypot(yy - cy, xx - cx))
    radius = np.hypot(yy - cy, xx - cx)[order]
    cumulative = np.cumsum(flux[order])
    total = float(cumulative[-1])
    if total <= 0:
        return 0.0, 0.0
    return total, float(radius[np.searchsorted(cumulative, 0.5 * total)])


def _deblend_target(smoothed, parents, target_label, npixels):
    """Deblend the target's segment only (the others are masked whole)."""
    if not target_label:
        return parents, True
    try:
        from photutils.segmentation import deblend_sources
    except ImportError:
        # photutils needs scikit-image to deblend; without it, stars projected
        # on the target cannot be separated from it and stay unmasked.
        return parents, False
    # photutils says when it falls back from exponential to linear thresholds
    # for a faint segment: routine, and not the user's to fix.
    with ignoring(message="The deblending mode"):
        children = deblend_sources(
            smoothed, parents, npixels, labels=[target_label], n_levels=32,
            contrast=0.005, progress_bar=False,
        )  # fmt: skip
    return children, True


def _catalogue(detection, labels, noise, fwhm_pix):
    """Core centroid, core FWHM, core ellipticity and peak S/N of every source.

    The core is the source's connected region above half its peak: its size
    tells a point source from a galaxy even when a bright star's halo makes
    the whole segment large.
    """
    rows = {}
    for label, box in enumerate(ndimage.find_objects(labels), start=1):
        if box is None:
            continue
        sub = detection[box]
        inside = labels[box] == label
        iy, ix = np.unravel_index(np.argmax(np.where(inside, sub, -np.inf)), sub.shape)
        row = _core_shape(sub, inside, (iy, ix), fwhm_pix, 0.0)
        row["x"] += box[1].start
        row["y"] += box[0].start
        row["peak_snr"] = float(sub[iy, ix] / noise[box][iy, ix])
        rows[label] = row
    return rows


def _core_shape(sub, inside, peak_at, fwhm_pix, floor):
    """Centroid, FWHM, ellipticity and concentration of a source above ``floor``."""
    iy, ix = peak_at
    half = floor + 0.5 * (sub[iy, ix] - floor)
    pieces, _ = ndimage.label(inside & (sub >= half))
    yy, xx = np.nonzero(pieces == pieces[iy, ix])
    weight = np.clip(sub[yy, xx] - floor, 1e-12, None)
    cy = float(np.average(yy, weights=weight))
    cx = float(np.average(xx, weights=weight))
    # Light within one PSF FWHM of the peak over light within three: about
    # 0.9 for a point source, less for anything extended.
    by, bx = np.nonzero(inside)
    radius = np.hypot(by - iy, bx - ix)
    light = np.clip(sub[by, bx] - floor, 0, None)
    outer = light[radius <= 3 * fwhm_pix].sum()
    concentration = light[radius <= fwhm_pix].sum() / outer if outer > 0 else 1.0
    ellipticity = 0.0
    if len(yy) >= 3:
        cov = np.cov(np.vstack([yy - cy, xx - cx]), aweights=weight)
        small, large = np.clip(np.linalg.eigvalsh(cov), 1e-12, None)
        ellipticity = float(1 - np.sqrt(small / large))
    return {
        "x": cx,
        "y": cy,
        "fwhm": float(2 * np.sqrt(len(yy) / np.pi)),
        "ellipticity": ellipticity,
        "concentration": float(concentration),
    }


def _shape_on_host(detection, piece, fwhm_pix):
    """`_core_shape` of a source above the light it sits on, or None.

    That light is the median of the ring 2-3 PSF FWHMs from the source's
    peak, so that a star seen through a galaxy still looks like a star; None
    where the source is no brighter than it.
    """
    box = ndimage.find_objects(piece.astype(np.int8))[0]
    sub, inside = detection[box], piece[box]
    iy, ix = np.unravel_index(np.argmax(np.where(inside, sub, -np.inf)), sub.shape)
    peak_at = (iy + box[0].start, ix + box[1].start)
    floor = max(_ring_median(detection, peak_at, 2 * fwhm_pix, 3 * fwhm_pix), 0.0)
    if floor >= sub[iy, ix]:
        return None
    return _core_shape(sub, inside, (iy, ix), fwhm_pix, floor)


def _point_like(row, fwhm_pix, limit=POINT_LIKE_FWHM):
    return bool(
        row["fwhm"] < limit * fwhm_pix
        and row["ellipticity"] < 0.3
        and row["concentration"] > POINT_CONCENTRATION
    )


def _star_seen_through(images, detection, row, piece, core, bad, fwhm_pix):
    """Whether a piece of the target that is not point-like is a star after all.

    ``core`` is the target centre's peak S/N and its g to i flux ratio (or
    None). Point-like once the galaxy's light beneath it is taken off (and no
    narrower than the PSF), and either brighter than the target's own centre
    or not bluer than the galaxy around it (star-forming clumps are fainter
    than their galaxy's centre and bluer than their disc and bulge); or
    saturated: brighter than the centre, above `SATURATED_PEAK_SNR` and
    touching masked pixels (a saturated core and its bleed trail cut a star
    into pieces that no longer look like a point).
    """
    if row["peak_snr"] < SEEN_THROUGH_MIN_SNR:
        return False
    core_peak_snr, centre_ratio = core
    brighter = row["peak_snr"] > core_peak_snr
    on_host = _shape_on_host(detection, piece, fwhm_pix)
    if (
        on_host is not None
        and _point_like(on_host, fwhm_pix)
        and on_host["fwhm"] >= STAR_MIN_FWHM * fwhm_pix
    ):
        return brighter or _not_bluer_than_host(images, row, fwhm_pix, centre_ratio)
    saturated = row["peak_snr"] > SATURATED_PEAK_SNR
    return brighter and saturated and bool(bad[_dilated(piece, 1)].any())


#: The colour (blue band, red band) that tells a star from a star-forming
#: clump of the galaxy it is seen through.
CLUMP_COLOUR = ("g", "i")


def _blue_to_red(images, centre, fwhm_pix):
    """Flux ratio of `CLUMP_COLOUR` of a source above the ring 2-3 FWHMs out.

    The ratio of the source's light within 1.5 PSF FWHMs of ``(y, x)`` above
    the ring's median, and that of the ring's median itself; None where
    either is not positive or the bands are missing.
    """
    if not all(band in images for band in CLUMP_COLOUR):
        return None, None
    excess, host = [], []
    for band in CLUMP_COLOUR:
        data = images[band].data
        floor = _ring_median(data, centre, 2 * fwhm_pix, 3 * fwhm_pix)
        core = _ring_values(data, centre, -1.0, 1.5 * fwhm_pix)
        excess.append(np.nansum(core - floor))
        host.append(floor)
    source = excess[0] / excess[1] if min(excess) > 0 else None
    return source, host[0] / host[1] if min(host) > 0 else None


def _not_bluer_than_host(images, row, fwhm_pix, centre_ratio):
    """Whether a source's g - i is at least that of the galaxy around it.

    The galaxy around it is the ring 2-3 PSF FWHMs from the source or, where
    that is bluer or too faint to measure, the galaxy's centre.
    """
    source, ring = _blue_to_red(images, (round(row["y"]), round(row["x"])), fwhm_pix)
    references = [r for r in (ring, centre_ratio) if r is not None]
    return bool(source is not None and references and source <= max(references))


def _ring_values(image, centre, inner, outer):
    """Pixel values between ``inner`` and ``outer`` pixels of ``(y, x)``."""
    reach = int(np.ceil(outer))
    y0, x0 = max(centre[0] - reach, 0), max(centre[1] - reach, 0)
    window = image[y0 : centre[0] + reach + 1, x0 : centre[1] + reach + 1]
    yy, xx = np.indices(window.shape)
    distance = np.hypot(yy + y0 - centre[0], xx + x0 - centre[1])
    return window[(distance > inner) & (distance <= outer)]


def _ring_median(image, centre, inner, outer):
    """Median of the finite pixels between ``inner`` and ``outer`` of ``(y, x)``."""
    values = _ring_values(image, centre, inner, outer)
    values = values[np.isfinite(values)]
    return float(np.median(values)) if values.size else 0.0


def _star_mask(piece, row, fwhm_pix, grow):
    """Return a star's segment grown to where its wings fade, spikes if bright."""
    shape = piece.shape
    mask = _dilated(piece, grow)
    # PSF wings fall roughly as r^-3: the radius where the wing reaches the noise.
    halo = 0.5 * fwhm_pix * max(row["peak_snr"], 1.0) ** (1 / 3)
    yy, xx = np.ogrid[: shape[0], : shape[1]]
    dy, dx = yy - row["y"], xx - row["x"]
    mask |= dx**2 + dy**2 <= halo**2
    if row["peak_snr"] > SPIKE_PEAK_SNR:
        # Diffraction spikes and bleed trails run along the frame's rows and
        # columns, to a few halo radii.
        width, length = max(0.5 * fwhm_pix, 1.0), 3.0 * halo
        mask |= (np.abs(dx) <= width) & (np.abs(dy) <= length)
        mask |= (np.abs(dy) <= width) & (np.abs(dx) <= length)
    return mask


def _within(shape, centre, radius):
    """Pixels within ``radius`` of ``(y, x)``."""
    yy, xx = np.ogrid[: shape[0], : shape[1]]
    return (yy - centre[0]) ** 2 + (xx - centre[1]) ** 2 <= radius**2


def _dilated(region, iterations):
    """`scipy.ndimage.binary_dilation` of a small region of a large image.

    The same pixels, dilated within the region's bounding box grown by
    ``iterations`` (the farthest the dilation reaches) rather than over the
    whole image.
    """
    found = ndimage.find_objects(region.astype(np.int8))
    out = np.zeros(region.shape, bool)
    if not found or found[0] is None:
        return out
    window = tuple(
        slice(max(box.start - iterations, 0), min(box.stop + iterations, n))
        for box, n in zip(found[0], region.shape, strict=True)
    )
    out[window] = ndimage.binary_dilation(region[window], iterations=iterations)
    return out


def _owned_by(labels, target):
    """Return where the nearest detected source is the target.

    Light above the isophote between sources (a bright neighbour's halo) is
    given to the nearest one, so a small galaxy beside a large one does not
    take in the large one's outskirts.
    """
    if not target.any():
        return target.copy()
    sources = (labels > 0) | target
    _, (near_y, near_x) = ndimage.distance_transform_edt(~sources, return_indices=True)
    return target[near_y, near_x]


def _footprint(image, target, others, owned, centre, fwhm_pix, isophote, bad):
    """Return the target's connected region above the isophote, others cut out."""
    flux = 10 ** (-0.4 * (isophote - 22.5)) * PIXEL_SCALE**2  # nmgy per pixel
    data = np.where(image.bad_pixels(), 0.0, image.data).astype(float)
    # Smoothed by the PSF: the faint outskirts rise above the pixel noise.
    sigma = max(fwhm_pix * gaussian_fwhm_to_sigma, 1.0)
    smoothed = ndimage.gaussian_filter(data, sigma=sigma, mode="constant")
    sky = ~(target | others | bad)
    noise = mad_std(smoothed[sky]) if sky.sum() > 100 else 0.0
    threshold = max(flux, 2.0 * noise)
    above = ((smoothed > threshold) & owned) | target
    above &= ~others & ~bad
    labels, _ = ndimage.label(above)
    label = _label_at(labels, *centre, radius=fwhm_pix)
    if not label or not target.any():
        return np.zeros_like(target), None
    footprint = ndimage.binary_fill_holes(labels == label) & ~others & ~bad
    reached = 22.5 - 2.5 * np.log10(threshold / PIXEL_SCALE**2)
    return footprint, float(reached)


def mask_sources(images, *, centre=None, nsigma=2.0, npixels=10, psf_fwhm=None):
    """Mask foreground stars and neighbours while keeping the target whole.

    The masks of `classify_sources`: every source but the target is masked,
    neighbours grown by a PSF FWHM and stars to where their halo fades.

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
        The target's pixels (its segment less the masked pieces).
    info : dict
        Numbers of masked sources and stars, masked fraction.
    """
    reference = "r" if "r" in images else next(iter(images))
    sources = classify_sources(
        images, centre=centre, psf_fwhm=psf_fwhm, nsigma=nsigma, npixels=npixels,
        reference_band=reference,
    )  # fmt: skip
    return sources.neighbours | sources.stars, sources.target, sources.info


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
