"""Observe a mock scene with the model SDSS camera, and say who owns each pixel.

The scene (target and neighbours with truth, before the PSF) gets synthetic
stars and faint light-only galaxies, the PSF, spikes, Gaussian sky noise
measured on real frames, quantization, saturation, cosmic rays and bad
columns. `~picasso_astro.training.mocks._sky` observes it on real frames
instead.
"""

import numpy as np

from ...images import BANDS, PIXEL_SCALE, BandImage
from . import _camera as cam
from . import _galaxy as gal

__all__ = ["OWNER_CODES", "gaussian_sky", "owner_map"]

#: Codes of the ``owner`` map: which source dominates a pixel's r-band light
#: (after the PSF) above the sky noise.
OWNER_CODES = {"sky": 0, "target": 1, "neighbour": 2, "other": 3}


def _neighbours(rng, shape, area_deg2):
    """Faint unrelated galaxies (light only, no truth): counts ~ 10^(0.45 m).

    7400 deg^-2 with 20 < r < 22.5; brighter neighbours are rendered with
    truth (`_truth_neighbours`).
    """
    ny, nx = shape
    count = rng.poisson(7400 * area_deg2 * ny * nx)
    out = []
    for _ in range(count):
        low, high = 10 ** (0.45 * 20), 10 ** (0.45 * 22.5)
        r_mag = float(np.log10(rng.uniform(low, high)) / 0.45)
        red = rng.uniform() < 0.4
        g_r = rng.uniform(0.9, 1.3) if red else rng.uniform(0.3, 0.7)
        u_g = rng.uniform(1.7, 2.2) if red else rng.uniform(1.0, 1.4)
        r_i = rng.uniform(0.4, 0.55) if red else rng.uniform(0.15, 0.35)
        i_z = rng.uniform(0.3, 0.45) if red else rng.uniform(0.05, 0.25)
        mags = np.array(
            [r_mag + g_r + u_g, r_mag + g_r, r_mag, r_mag - r_i, r_mag - r_i - i_z]
        )
        while True:
            x, y = rng.uniform(0, nx), rng.uniform(0, ny)
            if np.hypot(x - nx / 2, y - ny / 2) > min(nx, ny) / 8:
                break
        out.append(
            {
                "x": float(x),
                "y": float(y),
                "r_mag": r_mag,
                "flux": (10 ** (-0.4 * (mags - 22.5))).tolist(),
                "sersic_n": 4.0 if red else 1.0,
                "re_pixels": float(
                    10 ** rng.uniform(np.log10(0.7), np.log10(3 + 0.6 * (22.5 - r_mag)))
                ),
                "axis_ratio": float(rng.uniform(0.3, 1.0)),
                "position_angle": float(rng.uniform(0, np.pi)),
            }
        )
    return out


def _paint_neighbours(images, neighbours):
    _, ny, nx = images.shape
    for nb in neighbours:
        reach = int(np.ceil(8 * nb["re_pixels"])) + 2
        x0, x1 = max(int(nb["x"]) - reach, 0), min(int(nb["x"]) + reach + 1, nx)
        y0, y1 = max(int(nb["y"]) - reach, 0), min(int(nb["y"]) + reach + 1, ny)
        yy, xx = np.mgrid[y0:y1, x0:x1]
        dx, dy = xx - nb["x"], yy - nb["y"]
        c, s = np.cos(nb["position_angle"]), np.sin(nb["position_angle"])
        radius = np.hypot(dx * c + dy * s, (-dx * s + dy * c) / nb["axis_ratio"])
        n = nb["sersic_n"]
        profile = np.exp(-gal._sersic_b(n) * (radius / nb["re_pixels"]) ** (1 / n))
        profile /= profile.sum()
        images[:, y0:y1, x0:x1] += np.asarray(nb["flux"])[:, None, None] * profile


def owner_map(target_r, neighbour_r, other_r, threshold):
    """Which source dominates each pixel's r-band light (see `OWNER_CODES`).

    Parameters
    ----------
    target_r, neighbour_r, other_r : `~numpy.ndarray`
        PSF-convolved r-band light of the target (with its companion),
        of neighbours with truth and of sources without truth (stars, faint
        galaxies, real sources).
    threshold : float or `~numpy.ndarray`
        Light below it in every component leaves the pixel to the sky.

    Returns
    -------
    owner : `~numpy.ndarray`
        uint8 codes.
    """
    stack = np.stack([target_r, neighbour_r, other_r])
    owner = (np.argmax(stack, axis=0) + 1).astype(np.uint8)
    owner[stack.max(axis=0) <= threshold] = OWNER_CODES["sky"]
    return owner


def gaussian_sky(rng, galaxy, neighbour_light, shape, field, params, observing):
    """Observe the scene with the model camera: synthetic stars, Gaussian sky.

    Parameters
    ----------
    rng : `~numpy.random.Generator`
    galaxy, neighbour_light : `~numpy.ndarray`
        (5, ny, nx) light of the target and of the neighbours with truth, in
        nanomaggies before the PSF.
    shape : tuple of int
    field : str or None
        Key of `~picasso_astro.training.mocks.MEASURED_FIELDS`, random if None.
    params : dict
        The mock's parameters; the observing parameters are added.
    observing : dict
        ``seeing_median`` (arcsec) and ``noise_scale`` of the preset
        (`~picasso_astro.training.mocks._kinds.OBSERVING`).

    Returns
    -------
    images : dict of str to `~picasso_astro.images.BandImage`
    contaminant : `~numpy.ndarray`
        True where neighbours, stars or faint galaxies exceed the r-band noise.
    owner : `~numpy.ndarray`
        `owner_map` codes.
    stars, neighbours : list of dict
        The synthetic stars and light-only galaxies.
    """
    pixel_area_deg2 = (PIXEL_SCALE / 3600) ** 2
    fwhm = cam.draw_seeing(rng, observing["seeing_median"])
    kernels = cam.kernels_for(fwhm, PIXEL_SCALE)
    neighbours = _neighbours(rng, shape, pixel_area_deg2)
    stars = cam.draw_stars(rng, shape, pixel_area_deg2)
    other = np.zeros((5, *shape))
    _paint_neighbours(other, neighbours)
    cam.add_point_sources(other, stars["x"], stars["y"], stars["flux"])
    planes = [galaxy + neighbour_light + other, galaxy[2:3], neighbour_light[2:3]]
    stack = np.concatenate([*planes, other[2:3]]).astype(np.float32)
    convolved = cam.convolve(stack, kernels[[0, 1, 2, 3, 4, 2, 2, 2]])
    model = convolved[:5]
    target_r, neighbour_r, other_r = convolved[5], convolved[6], convolved[7]
    cam.add_spikes(model, stars, rng)

    field_name = (
        field or list(cam.MEASURED_FIELDS)[rng.integers(len(cam.MEASURED_FIELDS))]
    )
    conditions = cam.MEASURED_FIELDS[field_name]
    jitter = 10 ** rng.normal(0, 0.03, 5)
    images = {}
    counts = {"cosmic_rays": 0, "bad_columns": 0, "saturated": 0}
    for k, band in enumerate(BANDS):
        sky_sigma = conditions["noise"][k] * jitter[k] * observing["noise_scale"]
        calib = conditions["calib"][k]
        poisson = calib / cam.GAIN[k]
        variance = np.float32(sky_sigma**2) + np.maximum(model[k], 0) * np.float32(
            poisson
        )
        noise = np.sqrt(variance)
        offset = rng.normal(0, 0.05) * sky_sigma
        data = model[k] + offset + noise * rng.standard_normal(shape, dtype=np.float32)
        # Frames hold whole data numbers before sky subtraction and calibration.
        sky = conditions["sky"][k]
        data = np.round((data + np.float32(sky)) / np.float32(calib)) * np.float32(
            calib
        ) - np.float32(sky)
        mask = np.zeros(shape, dtype=bool)
        saturation = (cam.SATURATION_DN - conditions["sky"][k] / calib) * calib
        counts["saturated"] += cam.saturate(data, mask, saturation, rng)
        counts["cosmic_rays"] += cam.add_cosmic_rays(data, mask, sky_sigma, rng)
        counts["bad_columns"] += cam.mask_columns(data, mask, rng)
        params[f"seeing_{band}"] = float(fwhm[k])
        params[f"sky_noise_{band}"] = float(sky_sigma)
        params[f"sky_level_{band}"] = float(conditions["sky"][k])
        params[f"calib_{band}"] = float(calib)
        params[f"poisson_scale_{band}"] = float(poisson)
        params[f"sky_residual_{band}"] = float(offset)
        images[band] = BandImage(
            band,
            data,
            noise=noise.astype(np.float32),
            mask=mask,
            psf=kernels[k].astype(np.float32),
            psf_fwhm=float(fwhm[k]),
            meta={"source": "picasso_astro mock", "field_conditions": field_name},
        )
    params["field_index"] = float(list(cam.MEASURED_FIELDS).index(field_name))
    params["real_sky"] = 0.0
    params["n_stars"] = float(stars["r_mag"].size)
    params["n_neighbours"] = float(len(neighbours))
    for key, value in counts.items():
        params[f"n_{key}"] = float(value)
    threshold = params["sky_noise_r"]
    contaminant = (neighbour_r + other_r) > threshold
    owner = owner_map(target_r, neighbour_r, other_r, threshold)
    star_list = [
        {"x": float(x), "y": float(y), "r_mag": float(m), "flux": f.tolist()}
        for x, y, m, f in zip(
            stars["x"], stars["y"], stars["r_mag"], stars["flux"], strict=True
        )
    ]
    return images, contaminant, owner, star_list, neighbours
