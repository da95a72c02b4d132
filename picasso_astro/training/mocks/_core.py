"""Assemble one mock: galaxy (+ companion) -> pixels -> SDSS camera -> BandImage."""

from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np
from scipy.special import erf

from ...exceptions import PicassoInputError
from ...images import BANDS, PIXEL_SCALE, BandImage
from ...properties import PROPERTIES
from . import _camera as cam
from . import _galaxy as gal
from . import _relations as rel
from ._lines import line_fluxes
from ._sps import birth_cloud_screen, diffuse_tau_v, dust_transmission, load_sps_table

GENERATOR_VERSION = "1.1"
REDSHIFT_RANGE = (0.01, 0.15)
#: Fraction of galaxies drawn nearby (log-uniform redshift from 0.005), where
#: bright, resolved centres reach 10 nanomaggies per pixel and more.
NEARBY_FRACTION = 0.25
NEARBY_MIN_REDSHIFT = 0.005
#: Oversampling factors and the largest half-size (pixels) of the central box
#: where profiles are integrated over sub-pixels rather than sampled.
OVERSAMPLE = 5
MAX_OVERSAMPLE = 9
MAX_BOX_HALF = 10


@dataclass
class Mock:
    """One mock galaxy as SDSS would see it, with its truth maps.

    Attributes
    ----------
    images : dict of str to `~picasso_astro.images.BandImage`
        Sky-subtracted images in nanomaggies with noise map, mask and PSF.
    truth : `~numpy.ndarray`
        ``(n_properties, ny, nx)`` float32 log10 values in the order of
        `~picasso_astro.properties.PROPERTIES`, clipped to each property's bin
        range.
    truth_valid : `~numpy.ndarray`
        ``(n_properties, ny, nx)`` bool: False where the value is the floor
        (no mass, SFR or gas above the lowest bin edge) or a fill.
    contaminant : `~numpy.ndarray`
        ``(ny, nx)`` bool: stars and unrelated galaxies exceed the r-band noise.
    params : dict of str to float
        Every scalar generator parameter.
    extras : dict
        Lists (stars, neighbours, clumps) as JSON-serialisable data.
    """

    images: dict
    truth: np.ndarray
    truth_valid: np.ndarray
    contaminant: np.ndarray
    params: dict
    extras: dict = field(default_factory=dict)


@lru_cache(maxsize=1)
def _cosmology_table():
    from astropy.cosmology import Planck18

    z = np.linspace(0.002, 0.25, 600)
    distance_modulus = Planck18.distmod(z).value
    kpc_per_arcsec = Planck18.kpc_proper_per_arcmin(z).value / 60.0
    return z, distance_modulus, kpc_per_arcsec


def _draw_redshift(rng, log_mstar):
    """Redshift for a flux-limited sample: r < 18.5 with M/L_r ~ 2, p(z) ~ z^2.

    SDSS main-sample galaxies have r < 17.77 (Strauss et al. 2002); a slightly
    deeper limit and a floor of z_max = 0.03 keep low-mass galaxies common. A
    share `NEARBY_FRACTION` is drawn log-uniform from 0.005 instead, so that
    nearby galaxies with bright, well-resolved centres are well represented.
    """
    z, dm, _ = _cosmology_table()
    abs_r = 4.65 - 2.5 * (log_mstar - np.log10(2.0))
    z_max = float(np.clip(np.interp(18.5 - abs_r, dm, z), 0.03, REDSHIFT_RANGE[1]))
    if rng.uniform() < NEARBY_FRACTION:
        return float(np.exp(rng.uniform(np.log(NEARBY_MIN_REDSHIFT), np.log(z_max))))
    low, high = REDSHIFT_RANGE[0] ** 3, z_max**3
    return float(rng.uniform(low, high) ** (1 / 3))


def _seed_sequence(seed):
    if isinstance(seed, np.random.SeedSequence):
        return seed
    if isinstance(seed, int | np.integer) and seed >= 0:
        return np.random.SeedSequence(int(seed))
    msg = f"seed must be a non-negative integer or a numpy SeedSequence, not {seed!r}"
    raise PicassoInputError(msg)


def galaxy_seed(seed, index):
    """Return the seed of galaxy ``index`` of a dataset made with ``seed``.

    Galaxies are independent of one another and of how a dataset is split into
    shards or processes.

    Parameters
    ----------
    seed : int
    index : int

    Returns
    -------
    `~numpy.random.SeedSequence`
    """
    return np.random.SeedSequence(int(seed), spawn_key=(int(index),))


class _Accumulator:
    """Per-pixel sums (per kpc^2) of the galaxies in one image."""

    keys = ("mass_old", "mass_age", "mass_z", "sfr", "hi", "h2", "gas_oh")

    def __init__(self, shape):
        self.sums = {key: np.zeros(shape) for key in self.keys}
        self.light_old = np.zeros((5, *shape))
        self.empty = True

    def add(self, fields):
        if self.empty:
            self.sums = {key: fields[key] for key in self.keys}
            self.light_old = fields["light_old"]
            self.empty = False
            return
        for key in self.keys:
            self.sums[key] += fields[key]
        self.light_old += fields["light_old"]


def _steep_pixels(p, x, y, kpc_per_pixel, centre):
    """Pixels to integrate over sub-pixels, and the oversampling factor.

    The centre (three bulge radii, at least 3 pixels) always; for discs whose
    projected minor-axis scale length is under 1.5 pixels, also the band within
    four such scales of the major axis, out to eight disc scale lengths.
    """
    ny, nx = x.shape
    factor = OVERSAMPLE
    re_px = 10 ** min(p["log_re_bulge"], p["log_re_disc"] - 0.2) / kpc_per_pixel
    half = int(np.clip(np.ceil(3 * re_px), 3, MAX_BOX_HALF))
    refine = np.zeros((ny, nx), dtype=bool)
    ix, iy = round(centre[0]), round(centre[1])
    refine[max(iy - half, 0) : iy + half + 1, max(ix - half, 0) : ix + half + 1] = True
    cos_i = np.cos(np.radians(p["inclination_deg"]))
    q_disc = np.sqrt(cos_i**2 + p["disc_thickness"] ** 2 * (1 - cos_i**2))
    scale_px = 10 ** p["log_re_disc"] / 1.678 / kpc_per_pixel
    minor_scale = q_disc * scale_px
    if minor_scale < 1.5:
        geometry = gal.Geometry(p, x, y)
        minor = np.abs(geometry.disc_y) * geometry.q_disc / kpc_per_pixel
        band = (minor < 4 * minor_scale + 1) & (
            geometry.radius / kpc_per_pixel < 8 * scale_px
        )
        refine |= band
        factor = int(np.clip(np.ceil(3 / minor_scale), OVERSAMPLE, MAX_OVERSAMPLE))
    return refine, factor


def _render_galaxy(acc, p, centre, kpc_per_pixel, sps, tables, rng, extras, tag):
    ny, nx = acc.sums["sfr"].shape
    cx, cy = centre
    x = (np.arange(nx) - cx) * kpc_per_pixel
    y = (np.arange(ny) - cy) * kpc_per_pixel
    r_max = (
        float(np.hypot(max(abs(x[0]), abs(x[-1])), max(abs(y[0]), abs(y[-1])))) * 12 + 1
    )
    xx, yy = np.meshgrid(x.astype(np.float32), y.astype(np.float32))
    fields = gal.galaxy_fields(p, xx, yy, sps, tables, r_max=r_max)

    # Pixels where the profiles change on sub-pixel scales (the centre, and
    # thin discs seen edge-on) get the average over sub-pixels instead.
    refine, factor = _steep_pixels(p, xx, yy, kpc_per_pixel, (cx, cy))
    if refine.any():
        rows, cols = np.nonzero(refine)
        offsets = (np.arange(factor) + 0.5) / factor - 0.5
        sub_x = (cols[:, None, None] + offsets[None, None, :] - cx) * kpc_per_pixel
        sub_y = (rows[:, None, None] + offsets[None, :, None] - cy) * kpc_per_pixel
        sub_x, sub_y = np.broadcast_arrays(sub_x, sub_y)
        fine = gal.galaxy_fields(
            p,
            sub_x.reshape(rows.size, -1).astype(np.float32),
            sub_y.reshape(rows.size, -1).astype(np.float32),
            sps,
            tables,
            r_max=r_max,
        )
        for key, value in fine.items():
            fields[key][..., rows, cols] = value.mean(axis=-1)
    acc.add(fields)

    # Clumps: round Gaussians integrated exactly over pixels (separable erf).
    clumps = gal.clump_list(p, rng)
    sfr_total = 10 ** p["log_sfr"] * p["clump_sfr_fraction"]
    pixel_area = kpc_per_pixel**2
    for clump, (dx, dy) in zip(clumps, gal.clump_sky_positions(p, clumps), strict=True):
        px, py = cx + dx / kpc_per_pixel, cy + dy / kpc_per_pixel
        sigma = max(clump["sigma_kpc"] / kpc_per_pixel, 0.3)
        reach = int(np.ceil(4 * sigma)) + 1
        cols = np.arange(max(int(px) - reach, 0), min(int(px) + reach + 2, nx))
        rows = np.arange(max(int(py) - reach, 0), min(int(py) + reach + 2, ny))
        if cols.size == 0 or rows.size == 0:
            continue
        scale = sigma * np.sqrt(2)
        wx = 0.5 * (erf((cols + 0.5 - px) / scale) - erf((cols - 0.5 - px) / scale))
        wy = 0.5 * (erf((rows + 0.5 - py) / scale) - erf((rows - 0.5 - py) / scale))
        share = np.outer(wy, wx) / pixel_area
        sfr = sfr_total * clump["sfr_share"]
        area = 2 * np.pi * clump["sigma_kpc"] ** 2
        gas = rel.kennicutt_schmidt_gas(sfr / area) * area
        radius = np.hypot(clump["x_disc"], clump["y_disc"]) / 10 ** p["log_re_disc"]
        oh = p["oh_re"] + p["oh_gradient"] * (radius - 1)
        region = (slice(rows[0], rows[-1] + 1), slice(cols[0], cols[-1] + 1))
        acc.sums["sfr"][region] += sfr * share
        acc.sums["h2"][region] += gas * share
        acc.sums["gas_oh"][region] += gas * 10 ** (oh - 12) * share
        clump.update(x_pixel=float(px), y_pixel=float(py))
    extras[f"{tag}clumps"] = clumps


def _truth_maps(acc, young_living, young_log_z):
    mass = acc.sums["mass_old"] + young_living
    with np.errstate(invalid="ignore", divide="ignore"):
        gas = acc.sums["hi"] + acc.sums["h2"]
        age = (acc.sums["mass_age"] + young_living * gal.YOUNG_AGE_YR) / mass
        metal = (acc.sums["mass_z"] + young_living * 10**young_log_z) / mass
        oh = 12 + np.log10(acc.sums["gas_oh"] / gas)
        linear = {
            "sfr": acc.sums["sfr"],
            "hi": acc.sums["hi"],
            "stellar_mass": mass,
            "gas_mass": gal.HELIUM_FACTOR * gas,
        }
        logs = {key: np.log10(value) for key, value in linear.items()}
    logs["gas_metallicity"] = oh
    logs["stellar_metallicity"] = np.log10(metal)
    logs["stellar_age"] = np.log10(age)
    carrier = {
        "gas_metallicity": "gas_mass",
        "stellar_metallicity": "stellar_mass",
        "stellar_age": "stellar_mass",
    }
    shape = mass.shape
    truth = np.empty((len(PROPERTIES), *shape), dtype=np.float32)
    valid = np.empty((len(PROPERTIES), *shape), dtype=bool)
    for index, (name, prop) in enumerate(PROPERTIES.items()):
        edges = prop.edges
        value = logs[name]
        if name in carrier:
            host = carrier[name]
            ok = np.isfinite(logs[host]) & (logs[host] >= PROPERTIES[host].edges[0])
            ok &= np.isfinite(value)
        else:
            ok = np.isfinite(value) & (value >= edges[0])
        valid[index] = ok
        truth[index] = np.clip(np.where(ok, value, edges[0]), edges[0], edges[-1])
    return truth, valid


def _neighbours(rng, shape, area_deg2):
    """Unrelated galaxies (light only): r from counts ~ 10^(0.45 m), 15 < r < 22.5."""
    ny, nx = shape
    count = rng.poisson(8000 * area_deg2 * ny * nx)
    out = []
    for _ in range(count):
        low, high = 10 ** (0.45 * 15), 10 ** (0.45 * 22.5)
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


def make_mock(seed, *, size=256, overrides=None, field=None):
    """Make one mock SDSS galaxy with its truth maps.

    Parameters
    ----------
    seed : int or `~numpy.random.SeedSequence`
        Everything about the mock follows from it (see `galaxy_seed`).
    size : int
        Side of the square image in pixels (0.396 arcsec each).
    overrides : dict, optional
        Values for parameters of `draw_galaxy` (e.g. ``log_mstar``) and for
        ``redshift``, ``companion`` (0 or 1) or ``star_density`` scaling; useful
        for tests.
    field : str, optional
        Key of `MEASURED_FIELDS` whose observing conditions to use; a random
        one by default.

    Returns
    -------
    mock : `Mock`
    """
    if not isinstance(size, int | np.integer) or size < 16:
        msg = f"size must be an integer of at least 16 pixels, not {size!r}"
        raise PicassoInputError(msg)
    if field is not None and field not in cam.MEASURED_FIELDS:
        msg = f"unknown field {field!r}; use one of {', '.join(cam.MEASURED_FIELDS)}"
        raise PicassoInputError(msg)
    overrides = dict(overrides or {})
    rng = np.random.default_rng(_seed_sequence(seed))
    sps = load_sps_table()
    shape = (int(size), int(size))
    extras = {}

    p = gal.draw_galaxy(rng, overrides.pop("log_mstar", None))
    redshift = _draw_redshift(rng, p["log_mstar"])
    has_companion = float(rng.uniform() < 0.2)
    redshift = float(overrides.pop("redshift", redshift))
    has_companion = float(overrides.pop("companion", has_companion))
    for key, value in overrides.items():
        if key not in p:
            msg = f"unknown parameter {key!r} in overrides; known: {', '.join(p)}"
            raise PicassoInputError(msg)
        p[key] = float(value)
    if not NEARBY_MIN_REDSHIFT <= redshift <= 0.2:
        msg = f"redshift {redshift} is outside the SPS table's range 0.005-0.2"
        raise PicassoInputError(msg)
    z_grid, dm_grid, scale_grid = _cosmology_table()
    distance_modulus = float(np.interp(redshift, z_grid, dm_grid))
    kpc_per_pixel = float(np.interp(redshift, z_grid, scale_grid)) * PIXEL_SCALE
    tables = sps.at_redshift(redshift)

    params = {"generator_version": float(GENERATOR_VERSION), "redshift": redshift}
    params.update(p)
    params["distance_modulus"] = distance_modulus
    params["kpc_per_pixel"] = kpc_per_pixel
    centre = (
        (size - 1) / 2 + rng.uniform(-0.5, 0.5),
        (size - 1) / 2 + rng.uniform(-0.5, 0.5),
    )
    params["x_centre"], params["y_centre"] = centre

    acc = _Accumulator(shape)
    _render_galaxy(acc, p, centre, kpc_per_pixel, sps, tables, rng, extras, "")

    # A physically associated companion at the same redshift, drawn from the
    # same relations with a mass ratio of 1:30 to 1:2; it is part of the truth.
    companion = gal.draw_galaxy(rng, p["log_mstar"] + rng.uniform(-1.5, -0.3))
    separation = rng.uniform(1.5, 5.0) * 10 ** p["log_re_disc"] / kpc_per_pixel
    angle = rng.uniform(0, 2 * np.pi)
    companion_centre = (
        centre[0] + separation * np.cos(angle),
        centre[1] + separation * np.sin(angle),
    )
    params["companion"] = has_companion
    for key, value in companion.items():
        params[f"companion_{key}"] = value if has_companion else np.nan
    params["companion_x_centre"] = companion_centre[0] if has_companion else np.nan
    params["companion_y_centre"] = companion_centre[1] if has_companion else np.nan
    if has_companion:
        _render_galaxy(
            acc,
            companion,
            companion_centre,
            kpc_per_pixel,
            sps,
            tables,
            rng,
            extras,
            "companion_",
        )

    # Young stars, dust, and the galaxy light in nanomaggies per pixel.
    gas = acc.sums["hi"] + acc.sums["h2"]
    with np.errstate(invalid="ignore", divide="ignore"):
        oh = np.where(gas > 0, 12 + np.log10(acc.sums["gas_oh"] / gas), p["oh_re"])
    young_living, young_light, young_log_z = gal.young_light_pixels(
        sps, tables, acc.sums["sfr"], oh
    )
    transmission = dust_transmission(gas, oh, redshift)
    birth = (
        transmission
        * birth_cloud_screen(redshift, p["birth_cloud_tau_v"])[:, None, None]
    )
    to_nmgy = kpc_per_pixel**2 * 10 ** (-0.4 * distance_modulus) * 1e9
    starlight = (acc.light_old * transmission + young_light * birth) * to_nmgy
    lines = line_fluxes(
        sps,
        redshift,
        acc.sums["sfr"] * kpc_per_pixel**2,
        oh,
        distance_modulus,
        diffuse_tau_v(gas, oh),
        p["birth_cloud_tau_v"],
    )
    galaxy = starlight + lines
    truth, truth_valid = _truth_maps(acc, young_living, young_log_z)
    for k, band in enumerate(BANDS):
        params[f"flux_{band}"] = float(galaxy[k].sum())
        params[f"line_fraction_{band}"] = float(
            lines[k].sum() / max(galaxy[k].sum(), 1e-30)
        )
        params[f"flux_nodust_{band}"] = float(
            ((acc.light_old[k] + young_light[k]) * to_nmgy).sum()
        )
    params["log_mstar_image"] = float(
        np.log10((acc.sums["mass_old"] + young_living).sum() * kpc_per_pixel**2)
    )

    # The camera.
    pixel_area_deg2 = (PIXEL_SCALE / 3600) ** 2
    fwhm = cam.draw_seeing(rng)
    kernels = cam.kernels_for(fwhm, PIXEL_SCALE)
    neighbours = _neighbours(rng, shape, pixel_area_deg2)
    stars = cam.draw_stars(rng, shape, pixel_area_deg2)
    contamination = np.zeros((5, *shape))
    _paint_neighbours(contamination, neighbours)
    cam.add_point_sources(contamination, stars["x"], stars["y"], stars["flux"])
    stack = np.concatenate([galaxy + contamination, contamination[2:3]]).astype(
        np.float32
    )
    convolved = cam.convolve(stack, kernels[[0, 1, 2, 3, 4, 2]])
    model, contam_r = convolved[:5], convolved[5]
    cam.add_spikes(model, stars, rng)

    field_name = (
        field or list(cam.MEASURED_FIELDS)[rng.integers(len(cam.MEASURED_FIELDS))]
    )
    conditions = cam.MEASURED_FIELDS[field_name]
    jitter = 10 ** rng.normal(0, 0.03, 5)
    images = {}
    counts = {"cosmic_rays": 0, "bad_columns": 0, "saturated": 0}
    for k, band in enumerate(BANDS):
        sky_sigma = conditions["noise"][k] * jitter[k]
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
    params["n_stars"] = float(stars["r_mag"].size)
    params["n_neighbours"] = float(len(neighbours))
    for key, value in counts.items():
        params[f"n_{key}"] = float(value)
    contaminant = contam_r > params["sky_noise_r"]
    extras["stars"] = [
        {"x": float(x), "y": float(y), "r_mag": float(m), "flux": f.tolist()}
        for x, y, m, f in zip(
            stars["x"], stars["y"], stars["r_mag"], stars["flux"], strict=True
        )
    ]
    extras["neighbours"] = neighbours
    params = {key: float(value) for key, value in params.items()}
    return Mock(images, truth, truth_valid, contaminant, params, extras)


def mock_sky_noise(mock):
    """Sky noise per band of a mock, measured like on real frames.

    `~picasso_astro.training.mocks.measure_sky_noise` on the pixels where the
    sky dominates the noise (noise map within 5 % of its minimum) and that are
    not masked.

    Parameters
    ----------
    mock : `Mock`

    Returns
    -------
    sigma : `~numpy.ndarray`
        Shape (5,), nanomaggies, in `~picasso_astro.images.BANDS` order.
    """
    out = []
    for band in BANDS:
        image = mock.images[band]
        sky_dominated = image.noise <= 1.05 * image.noise.min()
        out.append(
            cam.measure_sky_noise(image.data, mask=image.bad_pixels() | ~sky_dominated)
        )
    return np.array(out)
