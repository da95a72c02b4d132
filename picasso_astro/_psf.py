"""PSF numerics: KL reconstruction, FWHM measurement, stacking stars, matching.

Private: the public entry points are in `picasso_astro.sdss` and
`picasso_astro.preprocess`.
"""

import numpy as np
from scipy import ndimage, optimize

from ._cache import ContentCache

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
