"""The SDSS camera: seeing, PSF, sky noise, stars, cosmic rays and bad columns."""

import numpy as np
from scipy import fft

from ...images import BANDS

__all__ = [
    "MEASURED_FIELDS",
    "measure_sky_noise",
    "psf_kernel",
]

#: Observing conditions measured on the real corrected frames in
#: ``../shared/data/sdss/`` (see ``scripts/validate_mocks.py``): per band,
#: ``noise`` is the one-sigma sky noise per pixel in nanomaggies measured with
#: `measure_sky_noise`, ``sky`` the sky level subtracted by the pipeline
#: (median of the HDU2 sky grid times the HDU1 calibration, nanomaggies per
#: pixel) and ``calib`` the median nanomaggies per data number (HDU1).
MEASURED_FIELDS = {
    "004510-4-0030": {
        "noise": (0.0452, 0.0149, 0.0234, 0.0352, 0.1839),
        "sky": (0.153, 0.211, 0.478, 0.728, 2.020),
        "calib": (0.00977, 0.00365, 0.00513, 0.00630, 0.03652),
    },
    "005405-6-0099": {
        "noise": (0.0575, 0.0208, 0.0368, 0.0709, 0.2148),
        "sky": (0.217, 0.295, 0.635, 1.033, 2.587),
        "calib": (0.01546, 0.00406, 0.00542, 0.00704, 0.03380),
    },
    "002583-2-0136": {
        "noise": (0.0600, 0.0227, 0.0352, 0.0592, 0.2281),
        "sky": (0.272, 0.339, 0.801, 1.640, 5.340),
        "calib": (0.01163, 0.00419, 0.00537, 0.00759, 0.03793),
    },
}

#: Typical SDSS camera gains in electrons per data number, per band (u g r i z;
#: camcol averages of the SDSS imaging camera, Gunn et al. 1998).
GAIN = np.array([1.6, 3.9, 4.7, 5.1, 4.7])

#: Full well in data numbers above which SDSS pixels saturate (about 55,000 DN
#: of the 16-bit amplifiers, less the sky).
SATURATION_DN = 55000.0

#: Effective wavelengths (Angstrom) used to scale the seeing, FWHM ~ lambda^-0.2
#: (Kolmogorov turbulence).
_LAMBDA = np.array([3551.0, 4686.0, 6166.0, 7480.0, 8932.0])


def measure_sky_noise(data, *, mask=None):
    """Robust one-sigma pixel noise of an image, insensitive to sources.

    The standard deviation of differences of horizontally adjacent pixels,
    3-sigma clipped (corrected for the clipping) and divided by sqrt(2):
    sources, gradients and the sky level cancel, so the same estimator serves
    real frames and mocks. A standard deviation rather than a median absolute
    deviation, because SDSS frames are quantized in data numbers, a few per
    sigma, which makes medians jump between levels.

    Parameters
    ----------
    data : 2D `~numpy.ndarray`
    mask : 2D bool `~numpy.ndarray`, optional
        True on pixels to leave out (bad pixels, or source-dominated ones).

    Returns
    -------
    sigma : float
    """
    from astropy.stats import sigma_clipped_stats

    data = np.asarray(data, dtype=float)
    diff = data[:, 1:] - data[:, :-1]
    good = np.isfinite(diff)
    if mask is not None:
        mask = np.asarray(mask, dtype=bool)
        good &= ~(mask[:, 1:] | mask[:, :-1])
    diff = diff[good]
    _, _, std = sigma_clipped_stats(diff, sigma=3, maxiters=10, stdfunc="std")
    return float(std / np.sqrt(2) / 0.9866)


def draw_seeing(rng, median=1.35):
    """Per-band PSF FWHM in arcsec.

    r-band seeing is log-normal with median ``median`` (1.35" by default) and
    0.1 dex scatter, clipped
    to 0.8-2.3" (the SDSS imaging median is about 1.3-1.4", Abazajian et al.
    2009); other bands scale as lambda^-0.2 with 3 % jitter, and u is a further
    5 % worse (u is the worst band in SDSS frames).
    """
    fwhm_r = float(np.clip(median * 10 ** rng.normal(0, 0.1), 0.8, 2.3))
    ratio = (_LAMBDA / _LAMBDA[2]) ** -0.2 * rng.normal(1.0, 0.03, 5)
    ratio[2] = 1.0
    ratio[0] *= 1.05
    return fwhm_r * ratio


def psf_kernel(fwhm_pixels, *, size=41, wing_fraction=0.03):
    """SDSS-like PSF image: double Gaussian core plus a Moffat wing.

    The core is the double Gaussian of the SDSS psField fits (inner sigma,
    outer sigma twice as wide with 10 % of the core light); a beta = 2 Moffat of
    three times the FWHM holds ``wing_fraction`` of the light (the extended
    power-law wings of real stars).

    Parameters
    ----------
    fwhm_pixels : float
        Core FWHM in pixels.
    size : int
        Odd side length of the kernel.
    wing_fraction : float

    Returns
    -------
    kernel : 2D `~numpy.ndarray`
        Sums to one.
    """
    half = size // 2
    yy, xx = np.mgrid[-half : half + 1, -half : half + 1]
    r2 = xx**2 + yy**2
    sigma = fwhm_pixels / 2.3548 / 1.04
    core = 0.9 * np.exp(-r2 / (2 * sigma**2)) / sigma**2 + 0.1 * np.exp(
        -r2 / (8 * sigma**2)
    ) / (4 * sigma**2)
    alpha = 3 * fwhm_pixels / (2 * np.sqrt(2**0.5 - 1))
    wing = (1 + r2 / alpha**2) ** -2.0
    kernel = (1 - wing_fraction) * core / core.sum() + wing_fraction * wing / wing.sum()
    return kernel / kernel.sum()


def convolve(images, kernels):
    """FFT convolution of a (5, H, W) stack with (5, k, k) kernels ('same' size)."""
    _, ny, nx = images.shape
    k = kernels.shape[-1]
    shape = (
        fft.next_fast_len(ny + k - 1, real=True),
        fft.next_fast_len(nx + k - 1, real=True),
    )
    image_ft = fft.rfft2(images, shape, axes=(-2, -1), workers=1)
    kernel_ft = fft.rfft2(kernels.astype(images.dtype), shape, axes=(-2, -1), workers=1)
    out = fft.irfft2(image_ft * kernel_ft, shape, axes=(-2, -1), workers=1)
    half = k // 2
    return out[:, half : half + ny, half : half + nx]


def draw_stars(rng, shape, pixel_area_deg2):
    """Foreground stars: positions and ugriz fluxes in nanomaggies.

    Star counts are set per field by a surface density drawn log-uniformly
    between 500 and 20,000 deg^-2 to r = 22 (high latitude to the Galactic
    plane), magnitudes follow dN/dm ~ 10^(0.25 m) over 12 < r < 22; one image
    in ten also gets a bright star (10 < r < 14, saturated). Colours follow the
    stellar locus (Covey et al. 2007, roughly linear in g - r).
    """
    ny, nx = shape
    density = 10 ** rng.uniform(np.log10(500), np.log10(20000))
    count = rng.poisson(density * pixel_area_deg2 * ny * nx)
    u01 = rng.uniform(size=count)
    low, high = 10 ** (0.25 * 12), 10 ** (0.25 * 22)
    r_mag = list(4 * np.log10(low + u01 * (high - low)))
    if rng.uniform() < 0.1:
        r_mag.append(rng.uniform(10, 14))
    r_mag = np.array(r_mag)
    g_r = rng.uniform(0.2, 1.5, r_mag.size)
    u_g = 0.8 + 1.1 * np.minimum(g_r, 1.2) + rng.normal(0, 0.1, r_mag.size)
    r_i = np.where(g_r < 1.2, 0.4 * g_r - 0.05, 0.43 + 1.5 * (g_r - 1.2))
    i_z = 0.5 * r_i
    mags = np.stack(
        [r_mag + g_r + u_g, r_mag + g_r, r_mag, r_mag - r_i, r_mag - r_i - i_z]
    )
    flux = 10 ** (-0.4 * (mags - 22.5))
    x = rng.uniform(-0.5, nx - 0.5, r_mag.size)
    y = rng.uniform(-0.5, ny - 0.5, r_mag.size)
    return {"x": x, "y": y, "flux": flux.T, "r_mag": r_mag}


def add_point_sources(images, x, y, flux):
    """Add delta functions (split bilinearly over 4 pixels) before the PSF."""
    _, ny, nx = images.shape
    x0 = np.floor(x).astype(int)
    y0 = np.floor(y).astype(int)
    fx = x - x0
    fy = y - y0
    for dx, dy, w in (
        (0, 0, (1 - fx) * (1 - fy)),
        (1, 0, fx * (1 - fy)),
        (0, 1, (1 - fx) * fy),
        (1, 1, fx * fy),
    ):
        xi = x0 + dx
        yi = y0 + dy
        inside = (xi >= 0) & (xi < nx) & (yi >= 0) & (yi < ny)
        for band in range(images.shape[0]):
            np.add.at(
                images[band], (yi[inside], xi[inside]), flux[inside, band] * w[inside]
            )


def add_spikes(images, stars, rng):
    """Diffraction spikes along rows and columns for stars brighter than r = 15."""
    _, ny, nx = images.shape
    bright = np.flatnonzero(stars["r_mag"] < 15)
    for index in bright:
        x, y = stars["x"][index], stars["y"][index]
        amplitude = stars["flux"][index] * 3e-4 * rng.uniform(0.5, 1.5)
        cols = np.arange(nx)
        rows = np.arange(ny)
        along_x = 1.0 / (1.0 + ((cols - x) / 2.0) ** 2)
        along_y = 1.0 / (1.0 + ((rows - y) / 2.0) ** 2)
        row = round(y)
        col = round(x)
        if 0 <= row < ny:
            images[:, row, :] += amplitude[:, None] * along_x
        if 0 <= col < nx:
            images[:, :, col] += amplitude[:, None] * along_y


def saturate(data, mask, saturation, rng):
    """Clip saturated pixels and bleed their excess charge along columns.

    SDSS CCDs bleed along the columns; the bleed trail length holds the excess
    charge at the saturation level. Saturated and bled pixels are masked
    (the SATUR bit of the SDSS fpM masks).
    """
    over = data > saturation
    if not over.any():
        return 0
    ny, _ = data.shape
    for col in np.flatnonzero(over.any(axis=0)):
        rows = np.flatnonzero(over[:, col])
        excess = float(np.sum(data[rows, col] - saturation))
        centre = int(rows.mean())
        length = int(np.ceil(excess / saturation / 2 * rng.uniform(0.8, 1.2)))
        low = max(rows.min() - length, 0)
        high = min(rows.max() + length + 1, ny)
        data[low:high, col] = np.maximum(data[low:high, col], saturation)
        data[rows, col] = saturation
        mask[low:high, col] = True
        del centre
    return int(over.sum())


def add_cosmic_rays(data, mask, sigma, rng, *, rate=4.0, flagged=0.9):
    """Cosmic-ray tracks: a few per 256^2 pixels, most flagged in the mask.

    Tracks are 1-8 pixels long with 5-200 sigma per pixel; the SDSS pipeline
    finds and flags most (the CR bit of fpM), a tenth stay unflagged.
    """
    ny, nx = data.shape
    count = rng.poisson(rate * ny * nx / 256**2)
    for _ in range(count):
        length = rng.integers(1, 9)
        angle = rng.uniform(0, np.pi)
        x0, y0 = rng.uniform(0, nx), rng.uniform(0, ny)
        steps = np.arange(length)
        xs = np.clip((x0 + steps * np.cos(angle)).astype(int), 0, nx - 1)
        ys = np.clip((y0 + steps * np.sin(angle)).astype(int), 0, ny - 1)
        data[ys, xs] += sigma * 10 ** rng.uniform(np.log10(5), np.log10(200), length)
        if rng.uniform() < flagged:
            mask[ys, xs] = True
    return count


def mask_columns(data, mask, rng, *, probability=0.05):
    """Mask 1-3 adjacent bad columns, with a small probability per band.

    The columns hold junk (zero, as interpolated-over data often reads).
    """
    if rng.uniform() >= probability:
        return 0
    nx = data.shape[1]
    width = int(rng.integers(1, 4))
    col = int(rng.integers(0, nx - width + 1))
    data[:, col : col + width] = 0.0
    mask[:, col : col + width] = True
    return width


def kernels_for(fwhm_arcsec, pixel_scale, *, size=41):
    """Per-band PSF kernels, shape (5, size, size)."""
    return np.stack([psf_kernel(f / pixel_scale, size=size) for f in fwhm_arcsec])


BAND_INDEX = {band: index for index, band in enumerate(BANDS)}
