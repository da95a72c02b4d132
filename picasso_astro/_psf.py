"""PSF numerics: KL reconstruction, FWHM measurement, stacking stars, matching.

Private: the public entry points are in `picasso_astro.sdss` and
`picasso_astro.preprocess`.
"""

import functools
import threading
import warnings
import weakref
from collections import OrderedDict

import numpy as np
from astropy.stats import mad_std
from scipy import ndimage, optimize

from ._cache import ContentCache
from ._sources import detect
from .exceptions import AssumedPSFWarning, PicassoInputError
from .images import PIXEL_SCALE, TYPICAL_FWHM

GAUSSIAN_SIGMA_TO_FWHM = 2.0 * np.sqrt(2.0 * np.log(2.0))


_FWHM_CACHE = ContentCache()


def kl_psf(components, row, col):
    """Reconstruct an SDSS KL-basis PSF at one frame position.

    The psField data model: the PSF at (row, col) is the sum over the KL
    eigenimages ``k`` of ``a_k * RROWS_k``, with
    ``a_k = sum_ij C_k[i, j] (0.001 row)**i (0.001 col)**j`` for
    ``i < nrow_b`` and ``j < ncol_b``.

    Parameters
    ----------
    components : list of dict
        One dict per eigenimage with keys ``image`` (2D), ``c`` (2D),
        ``nrow_b`` and ``ncol_b``.
    row, col : float
        Frame position (0-based row = y, column = x).

    Returns
    -------
    psf : 2D `~numpy.ndarray`
        Not normalised.
    """
    r = 0.001 * float(row)
    c = 0.001 * float(col)
    psf = np.zeros_like(components[0]["image"], dtype=float)
    for comp in components:
        nr, nc = comp["nrow_b"], comp["ncol_b"]
        powers_r = r ** np.arange(nr)
        powers_c = c ** np.arange(nc)
        coeff = float(powers_r @ comp["c"][:nr, :nc] @ powers_c)
        psf += coeff * comp["image"]
    return psf


def normalize_psf(psf):
    """Return ``psf`` with a zero pedestal removed and unit sum."""
    psf = np.asarray(psf, dtype=float)
    total = psf.sum()
    if not np.isfinite(total) or total <= 0:
        msg = "PSF image does not have a positive sum"
        raise ValueError(msg)
    return psf / total


def gaussian_psf(fwhm_pix, size):
    """Return a circular Gaussian PSF image of odd ``size`` and unit sum."""
    sigma = fwhm_pix / GAUSSIAN_SIGMA_TO_FWHM
    half = size // 2
    y, x = np.mgrid[-half : half + 1, -half : half + 1]
    psf = np.exp(-0.5 * (x**2 + y**2) / sigma**2)
    return psf / psf.sum()


def resize_odd(psf, size):
    """Crop or zero-pad a centred PSF image to ``size`` x ``size`` (odd)."""
    psf = np.asarray(psf, dtype=float)
    ny, nx = psf.shape
    out = np.zeros((size, size))
    cy, cx = ny // 2, nx // 2
    half = size // 2
    y0, y1 = max(cy - half, 0), min(cy + half + 1, ny)
    x0, x1 = max(cx - half, 0), min(cx + half + 1, nx)
    oy, ox = half - (cy - y0), half - (cx - x0)
    out[oy : oy + (y1 - y0), ox : ox + (x1 - x0)] = psf[y0:y1, x0:x1]
    return out / out.sum()


def _gauss2d(params, y, x):
    amp, y0, x0, sy, sx, theta, bkg = params
    ct, st = np.cos(theta), np.sin(theta)
    dx, dy = x - x0, y - y0
    u = ct * dx + st * dy
    v = -st * dx + ct * dy
    return amp * np.exp(-0.5 * ((u / sx) ** 2 + (v / sy) ** 2)) + bkg


def fit_fwhm(stamp, *, radius=None):
    """Measure the FWHM of a centred point source with an elliptical Gaussian.

    Only the core (within ``radius`` pixels of the peak) is fitted, so that
    the extended wings of real PSFs do not inflate the width.

    Parameters
    ----------
    stamp : 2D `~numpy.ndarray`
        Image of one point source, roughly centred.
    radius : float, optional
        Fit radius in pixels; by default 2.5 times a first width estimate.

    Returns
    -------
    fwhm : float
        Geometric-mean FWHM in pixels (nan when the fit fails).
    centre : tuple of float
        Fitted ``(y, x)`` of the centre.
    """
    stamp = np.asarray(stamp, dtype=float)
    good = np.isfinite(stamp)
    ny, nx = stamp.shape
    y, x = np.mgrid[0:ny, 0:nx]
    work = np.where(good, stamp, 0.0)
    peak_y, peak_x = np.unravel_index(np.argmax(work), work.shape)
    amp = work[peak_y, peak_x]
    if amp <= 0:
        return np.nan, (np.nan, np.nan)
    # First width guess from the number of pixels above half maximum.
    area = np.count_nonzero(work > 0.5 * amp)
    sigma0 = max(np.sqrt(area / np.pi) / np.sqrt(2 * np.log(2)), 0.7)
    if radius is None:
        radius = max(2.5 * sigma0 * GAUSSIAN_SIGMA_TO_FWHM / 2, 4.0)
    sel = good & (np.hypot(y - peak_y, x - peak_x) <= radius)
    p0 = [amp, peak_y, peak_x, sigma0, sigma0, 0.0, 0.0]

    def resid(p):
        return _gauss2d(p, y[sel], x[sel]) - stamp[sel]

    lower = [0, peak_y - 2, peak_x - 2, 0.3, 0.3, -np.pi, -np.inf]
    upper = [np.inf, peak_y + 2, peak_x + 2, radius, radius, np.pi, np.inf]
    try:
        fit = optimize.least_squares(resid, p0, bounds=(lower, upper))
    except ValueError:
        return np.nan, (np.nan, np.nan)
    if not fit.success:
        return np.nan, (np.nan, np.nan)
    sy, sx = abs(fit.x[3]), abs(fit.x[4])
    return float(GAUSSIAN_SIGMA_TO_FWHM * np.sqrt(sy * sx)), (fit.x[1], fit.x[2])


def psf_fwhm(psf):
    """Return `fit_fwhm` of a PSF image, computed once per distinct image."""
    psf = np.asarray(psf, dtype=float)
    return _FWHM_CACHE.get(ContentCache.key(psf), lambda: fit_fwhm(psf))


def stack_stars(data, positions, *, size):
    """Median-stack normalised, recentred star stamps into a PSF image.

    Parameters
    ----------
    data : 2D `~numpy.ndarray`
        Background-subtracted image.
    positions : array of shape (n, 2)
        ``(y, x)`` centroids of the stars.
    size : int
        Odd stamp size.

    Returns
    -------
    psf : 2D `~numpy.ndarray` or None
        Unit-sum PSF, None when no star stamp is usable.
    """
    half = size // 2
    big = half + 3
    stamps = []
    ny, nx = data.shape
    for yc, xc in positions:
        iy, ix = int(np.rint(yc)), int(np.rint(xc))
        if iy - big < 0 or ix - big < 0 or iy + big + 1 > ny or ix + big + 1 > nx:
            continue
        stamp = data[iy - big : iy + big + 1, ix - big : ix + big + 1]
        if not np.all(np.isfinite(stamp)):
            continue
        shifted = ndimage.shift(stamp, (iy - yc, ix - xc), order=3, mode="nearest")
        core = shifted[3:-3, 3:-3]
        total = core.sum()
        if total <= 0:
            continue
        stamps.append(core / total)
    if not stamps:
        return None
    psf = np.median(np.array(stamps), axis=0)
    psf = np.clip(psf, 0, None)
    return psf / psf.sum()


def ringing(kernel):
    """Negative-to-positive ratio of a kernel: 0 for no ringing."""
    neg = -kernel[kernel < 0].sum()
    pos = kernel[kernel > 0].sum()
    return float(neg / pos) if pos > 0 else np.inf


#: Odd size in pixels of the PSF images used for matching.
PSF_SIZE = 41

#: Pixels whose matching kernel falls on less than this good weight stay masked.
MIN_GOOD_WEIGHT = 0.5

#: Largest accepted ringing (negative/positive kernel sum) of a matching kernel.
MAX_RINGING = 0.1


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

    data = np.where(image.bad_pixels(), np.nan, image.data)
    noise = image.noise
    if noise is None:
        noise = np.full(data.shape, mad_std(data, ignore_nan=True))
    counts_peak = None
    saturation_counts = image.meta.get("saturation_counts")
    if saturation is None and saturation_counts is not None and "calib" in image.meta:
        # SDSS frames: saturation is a level in raw counts, sky included.
        calib = np.asarray(image.meta["calib"])[np.newaxis, :]
        counts_peak = data / calib + np.asarray(image.meta["sky"]) / calib
    segm, _ = detect(
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
        ok &= counts_peak[iy, ix] < saturation_counts
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
    psf = stack_stars(np.nan_to_num(data), np.c_[yc[index], xc[index]], size=size)
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
        fwhms.append(fit_fwhm(stamp)[0])
    return psf, float(np.nanmedian(fwhms) * PIXEL_SCALE), len(index)


def psf_for_band(
    image, *, position=None, psfield=None, fallback_fwhm=None, size=PSF_SIZE
):
    """Return the PSF of one band: psField, else the image's, else stars, else FWHM.

    Parameters
    ----------
    image : `~picasso_astro.images.BandImage`
        The whole frame (stars are measured on it).
    position : `~astropy.coordinates.SkyCoord`, optional
        Where the PSF is wanted (for a psField's position-dependent PSF).
    psfield : `~picasso_astro.sdss.PSField`, optional
        When given, the PSF is reconstructed from it.
    fallback_fwhm : float, dict or `~astropy.units.Quantity`, optional
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
        ``"psField"``, ``"image"`` (a PSF already attached), ``"stars (N)"`` or
        ``"fwhm"``.
    """
    if psfield is not None:
        if position is not None and image.wcs is not None:
            # A frame read in part (`~picasso_astro.sdss.read_frame`) knows
            # the whole frame's WCS: the psField's PSF varies over the frame.
            x, y = image.meta.get("frame_wcs", image.wcs).world_to_pixel(position)
        else:
            y, x = (np.asarray(image.shape) - 1) / 2
        psf = psfield.psf(image.band, float(y), float(x))
        fwhm = psf_fwhm(psf)[0] * PIXEL_SCALE
        return resize_odd(psf, size), float(fwhm), "psField"
    if image.psf is not None:
        fwhm = image.psf_fwhm
        if fwhm is None:
            fwhm = psf_fwhm(image.psf)[0] * PIXEL_SCALE
        source = image.meta.get("psf_from", "image")
        return resize_odd(image.psf, size), float(fwhm), source
    if image.psf_fwhm is not None:
        psf = gaussian_psf(float(image.psf_fwhm) / PIXEL_SCALE, size)
        return psf, float(image.psf_fwhm), "fwhm (header)"
    if isinstance(fallback_fwhm, dict):
        fallback_fwhm = fallback_fwhm.get(image.band)
    if hasattr(fallback_fwhm, "unit"):
        fallback_fwhm = fallback_fwhm.to_value("arcsec")
    try:
        psf, fwhm, nstars = _stars_psf(image, size)
    except PicassoInputError:
        if fallback_fwhm is None:
            raise
    else:
        return psf, fwhm, f"stars ({nstars})"
    psf = gaussian_psf(float(fallback_fwhm) / PIXEL_SCALE, size)
    return psf, float(fallback_fwhm), "fwhm"


def assumed_psf(band, reason, *, name, size=PSF_SIZE):
    """Return a typical SDSS PSF for a band whose PSF is unknown, with a warning.

    Returns ``(psf, fwhm, "assumed")`` like `psf_for_band`, and warns with
    `~picasso_astro.exceptions.AssumedPSFWarning` why (``reason``) and what
    to give instead.
    """
    warnings.warn(
        f"{name}: {reason}; assumed the typical SDSS seeing, {TYPICAL_FWHM} arcsec, "
        f"in the {band} band, so the bands are matched to a guess: give psf_fwhm "
        "per band, a psField, or a PSF_FWHM keyword in each band's header",
        AssumedPSFWarning,
        stacklevel=3,
    )
    return gaussian_psf(TYPICAL_FWHM / PIXEL_SCALE, size), TYPICAL_FWHM, "assumed"


#: PSFs measured from the stars of images, by image: ``{key: (weakref, result)}``.
_STAR_PSFS = {}

#: PSFs measured from the stars of frame files, by file and PSF size, most
#: recent last: kept when the frame's pixels are freed.
_FILE_STAR_PSFS = OrderedDict()
_FILE_STAR_PSFS_LOCK = threading.Lock()

#: Frame files whose star PSFs `_FILE_STAR_PSFS` keeps.
FILE_STAR_PSFS = 64


def star_psf_known(frame, size=PSF_SIZE):
    """Return whether the star PSF of a frame file was measured in this process.

    Parameters
    ----------
    frame : tuple
        The file's `~picasso_astro.sdss.frame_id`.
    size : int
        Odd size of the PSF image.
    """
    with _FILE_STAR_PSFS_LOCK:
        return (frame, size) in _FILE_STAR_PSFS


def forget_star_psfs():
    """Forget every PSF measured from stars (for benchmarks of first reads)."""
    with _FILE_STAR_PSFS_LOCK:
        _FILE_STAR_PSFS.clear()
    _STAR_PSFS.clear()


def _measure_stars_psf(image, size):
    try:
        return estimate_psf(image, size=size)
    except PicassoInputError as exc:
        # The message only: the exception's traceback holds the frame.
        return str(exc)


def _file_stars_psf(image, frame, size):
    """`estimate_psf` once per frame file (``meta["frame_id"]``), whole frames only."""
    key = (frame, size)
    with _FILE_STAR_PSFS_LOCK:
        result = _FILE_STAR_PSFS.get(key)
        if result is not None:
            _FILE_STAR_PSFS.move_to_end(key)
            return result
    if image.meta.get("frame_rows") is not None:
        msg = (
            f"{image.meta.get('file', 'the frame')}: a PSF from stars is measured "
            "on the whole frame, not on some of its rows; read the whole frame"
        )
        raise ValueError(msg)
    result = _measure_stars_psf(image, size)
    remember_star_psf(frame, result, size)
    return result


def star_psf_of(frame, size=PSF_SIZE):
    """Return what was measured of a frame file's stars in this process, or None.

    A ``(psf, fwhm, nstars)`` tuple, or the message of the failure; with
    `remember_star_psf`, another process (a Dask worker) then uses the same.
    """
    with _FILE_STAR_PSFS_LOCK:
        return _FILE_STAR_PSFS.get((frame, size))


def remember_star_psf(frame, result, size=PSF_SIZE):
    """Keep the star PSF of a frame file (from `star_psf_of`) for this process."""
    with _FILE_STAR_PSFS_LOCK:
        _FILE_STAR_PSFS[(frame, size)] = result
        _FILE_STAR_PSFS.move_to_end((frame, size))
        while len(_FILE_STAR_PSFS) > FILE_STAR_PSFS:
            _FILE_STAR_PSFS.popitem(last=False)


def _stars_psf(image, size):
    """`estimate_psf` once per frame: every galaxy of a field reuses it.

    Frames read from files (``meta["frame_id"]``) are measured once per file
    in this process, even after their pixels are freed, so that a field read
    again (a later batch of its galaxies, or only the rows around them) uses
    the same PSF; other images are measured once per pixel array, forgotten
    with it.  Failures are kept too, so that a frame without stars is
    searched once.
    """
    frame = image.meta.get("frame_id")
    if frame is not None:
        result = _file_stars_psf(image, frame, size)
    else:
        key = (id(image.data), size)
        entry = _STAR_PSFS.get(key)
        if entry is None or entry[0]() is not image.data:
            forget = functools.partial(_STAR_PSFS.pop, key, None)
            entry = (
                weakref.ref(image.data, lambda _: forget()),
                _measure_stars_psf(image, size),
            )
            _STAR_PSFS[key] = entry
        result = entry[1]
    if isinstance(result, str):
        raise PicassoInputError(result)
    psf, fwhm, nstars = result
    return psf.copy(), fwhm, nstars


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
    fwhm_s = psf_fwhm(source_psf)[0]
    fwhm_t = psf_fwhm(target_psf)[0]
    width = np.sqrt(max(fwhm_t**2 - fwhm_s**2, 0.0))
    if width > 0.3:
        kernel = gaussian_psf(width, source_psf.shape[0])
    else:
        kernel = np.zeros_like(source_psf)
        kernel[kernel.shape[0] // 2, kernel.shape[1] // 2] = 1.0
    candidates.append((kernel, {"method": "gaussian", "window": None}))
    best = None
    for kernel, info in candidates:
        matched = fftconvolve(source_psf, kernel, mode="same")
        info["residual"] = float(np.abs(matched - target_psf).sum())
        info["ringing"] = ringing(kernel)
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
    from scipy.signal import fftconvolve

    target_band = max(fwhms, key=fwhms.get)
    target_psf = psfs[target_band]
    info = {"target_band": target_band, "target_fwhm": float(fwhms[target_band])}
    matched = {}
    for band, image in images.items():
        if band == target_band:
            matched[band] = image.replace(
                psf=target_psf, psf_fwhm=fwhms[target_band], meta=dict(image.meta)
            )
            info[band] = {"window": None, "residual": 0.0, "ringing": 0.0}
            continue
        kernel, kinfo = matching_kernel(psfs[band], target_psf)
        info[band] = kinfo
        bad = image.bad_pixels()
        # Normalised convolution: near masked pixels (a frame's edge) each
        # pixel is the kernel-weighted mean of the good ones around it, so the
        # mask does not spread; only pixels with too little good data around
        # them stay masked.
        good = (~bad).astype(float)
        weight = fftconvolve(good, kernel, mode="same") if bad.any() else None
        data = fftconvolve(np.where(bad, 0.0, image.data), kernel, mode="same")
        noise = image.noise
        if noise is not None:
            noise = np.sqrt(
                fftconvolve(np.where(bad, 0.0, noise**2), kernel**2, mode="same").clip(
                    0
                )
            )
        mask = bad
        if weight is not None:
            mask = bad | (weight < MIN_GOOD_WEIGHT)
            scale = np.where(mask, 1.0, weight)
            data = data / scale
            if noise is not None:
                noise = noise / scale
        matched[band] = image.replace(
            data=np.where(mask, np.nan, data),
            noise=noise,
            mask=mask,
            psf=target_psf,
            psf_fwhm=fwhms[target_band],
            meta=dict(image.meta, psf_matched_to=target_band),
        )
    return matched, info
