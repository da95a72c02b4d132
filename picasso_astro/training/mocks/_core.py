"""Assemble one mock: galaxy (+ companion) -> pixels -> SDSS camera -> BandImage."""

from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np
from scipy.ndimage import gaussian_filter
from scipy.special import erf

from ...exceptions import PicassoInputError
from ...images import BANDS, PIXEL_SCALE
from ...properties import PROPERTIES
from . import _camera as cam
from . import _galaxy as gal
from . import _relations as rel
from ._kinds import (
    KINDS,
    OBSERVING,
    POPULATIONS,
    draw_kind,
    draw_traits,
    finish_kind,
)
from ._lines import line_fluxes
from ._observe import gaussian_sky
from ._sps import birth_cloud_screen, diffuse_tau_v, dust_transmission, load_sps_table

GENERATOR_VERSION = "2.1"
REDSHIFT_RANGE = (0.01, 0.25)
#: Fraction of galaxies drawn nearby (log-uniform redshift from 0.005), where
#: bright, resolved centres reach 10 nanomaggies per pixel and more.
NEARBY_FRACTION = 0.25
NEARBY_MIN_REDSHIFT = 0.005
#: Oversampling factors and the largest half-size (pixels) of the central box
#: where profiles are integrated over sub-pixels rather than sampled.
OVERSAMPLE = 5
MAX_OVERSAMPLE = 9
MAX_BOX_HALF = 10
#: Surface density (deg^-2) of neighbours rendered with truth, and the
#: smallest and largest box (pixels) each is rendered on: eight disc R_e
#: across, within these bounds.
NEIGHBOUR_DENSITY = 3000.0
NEIGHBOUR_BOX = (32, 128)


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
        ``(ny, nx)`` bool: stars and unrelated galaxies (with truth or not,
        synthetic or real) exceed the r-band noise; the target has no truth
        there.
    params : dict of str to float
        Every scalar generator parameter, the galaxy's kind included
        (``kind``, the index in `KINDS`, and one ``is_<kind>`` flag each).
    extras : dict
        Lists (stars, neighbours, clumps) as JSON-serialisable data.
    owner : `~numpy.ndarray` or None
        ``(ny, nx)`` uint8: which source dominates each pixel (`OWNER_CODES`).
    neighbour_truth : `~numpy.ndarray` or None
        ``(n_properties, ny, nx)`` truth of the neighbours rendered with
        truth, kept apart from the target's ``truth`` (floors elsewhere).
    neighbour_truth_valid : `~numpy.ndarray` or None
        Like ``truth_valid``, for ``neighbour_truth``.
    """

    images: dict
    truth: np.ndarray
    truth_valid: np.ndarray
    contaminant: np.ndarray
    params: dict
    extras: dict = field(default_factory=dict)
    owner: np.ndarray | None = None
    neighbour_truth: np.ndarray | None = None
    neighbour_truth_valid: np.ndarray | None = None


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
        patch = _gaussian_patch((ny, nx), px, py, clump["sigma_kpc"] / kpc_per_pixel)
        if patch is None:
            continue
        region, share = patch
        share = share / pixel_area
        sfr = sfr_total * clump["sfr_share"]
        area = 2 * np.pi * clump["sigma_kpc"] ** 2
        gas = rel.kennicutt_schmidt_gas(sfr / area) * area
        radius = np.hypot(clump["x_disc"], clump["y_disc"]) / 10 ** p["log_re_disc"]
        oh = p["oh_re"] + p["oh_gradient"] * (radius - 1)
        acc.sums["sfr"][region] += sfr * share
        acc.sums["h2"][region] += gas * share
        acc.sums["gas_oh"][region] += gas * 10 ** (oh - 12) * share
        clump.update(x_pixel=float(px), y_pixel=float(py))
    extras[f"{tag}clumps"] = clumps
    if p.get("tail_fraction", 0.0) > 0:
        tails = _render_tails(acc, p, centre, kpc_per_pixel, sps, tables, rng)
        extras[f"{tag}tails"] = tails


def _gaussian_patch(shape, px, py, sigma):
    """Pixel shares of a round Gaussian (sigma in pixels) integrated over pixels.

    Returns ``(region, share)``: the slices it covers and the share of its
    total in each pixel there (separable erf), or None when off the image.
    """
    ny, nx = shape
    sigma = max(sigma, 0.3)
    reach = int(np.ceil(4 * sigma)) + 1
    cols = np.arange(max(int(px) - reach, 0), min(int(px) + reach + 2, nx))
    rows = np.arange(max(int(py) - reach, 0), min(int(py) + reach + 2, ny))
    if cols.size == 0 or rows.size == 0:
        return None
    scale = sigma * np.sqrt(2)
    wx = 0.5 * (erf((cols + 0.5 - px) / scale) - erf((cols - 0.5 - px) / scale))
    wy = 0.5 * (erf((rows + 0.5 - py) / scale) - erf((rows - 0.5 - py) / scale))
    region = (slice(rows[0], rows[-1] + 1), slice(cols[0], cols[-1] + 1))
    return region, np.outer(wy, wx)


def _render_tails(acc, p, centre, kpc_per_pixel, sps, tables, rng):
    """Add a merger's tidal tails (stars of the outer disc) to the sums."""
    blobs = gal.tidal_tails(p, rng)
    mass = 10 ** p["log_mstar"] * p["tail_fraction"]
    # The populations of the disc at 3 R_e, where tails are pulled from.
    log_age = np.clip(
        p["log_age_disc_re"] + 2 * p["log_age_gradient"], 8.0, gal.LOG_AGE_UNIVERSE
    )
    log_z = np.clip(p["logz_disc_re"] + 2 * p["logz_gradient"], -2.3, 0.69)
    family = "burst" if p["delta_ms"] <= -1.0 else "extended"
    light = sps.old_light(tables[family], np.array([log_age]), np.array([log_z]))[:, 0]
    per_kpc2 = 1.0 / kpc_per_pixel**2
    for blob in blobs:
        px = centre[0] + blob["dx"] / kpc_per_pixel
        py = centre[1] + blob["dy"] / kpc_per_pixel
        patch = _gaussian_patch(
            acc.sums["mass_old"].shape, px, py, blob["sigma_kpc"] / kpc_per_pixel
        )
        blob.update(x_pixel=float(px), y_pixel=float(py))
        if patch is None:
            continue
        region, share = patch
        stars = mass * blob["mass_share"] * share * per_kpc2
        acc.sums["mass_old"][region] += stars
        acc.sums["mass_age"][region] += stars * 10**log_age
        acc.sums["mass_z"][region] += stars * 10**log_z
        acc.light_old[(slice(None), *region)] += light[:, None, None] * stars
    return blobs


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


def _patchy_screen(rng, shape, sigma_dex, kpc_per_pixel):
    """Log-normal dust screen of mean one: a Gaussian random field, kpc cells.

    Dust in starbursts and mergers is clumpy on kpc scales (e.g. Piqueras
    Lopez et al. 2013, MNRAS 429, 2938, A_V maps of local LIRGs): white noise
    smoothed by a Gaussian of 1 kpc (at least 0.7 pixels).
    """
    field = gaussian_filter(
        rng.standard_normal(shape), max(1.0 / kpc_per_pixel, 0.7), mode="wrap"
    )
    field /= max(float(field.std()), 1e-12)
    ln_sigma = sigma_dex * np.log(10)
    return np.exp(ln_sigma * field - ln_sigma**2 / 2)


def _light(acc, p, redshift, kpc_per_pixel, sps, tables, rng):
    """Young stars, dust and lines: the galaxy light in nanomaggies per pixel.

    Returns
    -------
    light : dict
        ``galaxy`` and ``lines`` (5, ny, nx) nanomaggies, ``nodust`` (5,)
        total flux without dust, ``young_living`` and ``young_log_z`` maps.
    """
    z_grid, dm_grid, _ = _cosmology_table()
    distance_modulus = float(np.interp(redshift, z_grid, dm_grid))
    gas = acc.sums["hi"] + acc.sums["h2"]
    with np.errstate(invalid="ignore", divide="ignore"):
        oh = np.where(gas > 0, 12 + np.log10(acc.sums["gas_oh"] / gas), p["oh_re"])
    young_living, young_light, young_log_z = gal.young_light_pixels(
        sps, tables, acc.sums["sfr"], oh
    )
    # Dust follows the gas column (times a boost for dusty kinds), patchy
    # where the kind says so.
    dust_column = gas * p.get("dust_boost", 1.0)
    if p.get("dust_patchiness", 0.0) > 0:
        dust_column = dust_column * _patchy_screen(
            rng, gas.shape, p["dust_patchiness"], kpc_per_pixel
        )
    transmission = dust_transmission(dust_column, oh, redshift)
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
        diffuse_tau_v(dust_column, oh),
        p["birth_cloud_tau_v"],
    )
    nodust = ((acc.light_old + young_light) * to_nmgy).sum(axis=(-2, -1))
    return {
        "galaxy": starlight + lines,
        "lines": lines,
        "nodust": nodust,
        "young_living": young_living,
        "young_log_z": young_log_z,
    }


def _galaxy_scales(redshift, sps):
    z_grid, dm_grid, scale_grid = _cosmology_table()
    distance_modulus = float(np.interp(redshift, z_grid, dm_grid))
    kpc_per_pixel = float(np.interp(redshift, z_grid, scale_grid)) * PIXEL_SCALE
    return distance_modulus, kpc_per_pixel, sps.at_redshift(redshift)


def _truth_neighbours(rng, shape, sps):
    """Unrelated galaxies with truth: rendered like the target, at their own z.

    Their number follows the SDSS counts of resolved galaxies, about 3000
    deg^-2 to r = 21 (Yasuda et al. 2001, AJ 122, 1104); masses are flat in
    log M* over 9-11.5 and redshifts follow the volume (p(z) ~ z^2, 0.02-0.25),
    so that most are background galaxies smaller than the target. Each is
    rendered on a box of eight disc R_e (`NEIGHBOUR_BOX` bounds it).

    Returns
    -------
    light : `~numpy.ndarray`
        (5, ny, nx) nanomaggies.
    truth, valid : `~numpy.ndarray`
        (P, ny, nx): per pixel, the truth of the neighbour with the most
        stellar mass there; floors elsewhere.
    listing : list of dict
    """
    ny, nx = shape
    area_deg2 = ny * nx * (PIXEL_SCALE / 3600) ** 2
    count = rng.poisson(NEIGHBOUR_DENSITY * area_deg2)
    light = np.zeros((5, ny, nx), dtype=np.float32)
    truth = np.empty((len(PROPERTIES), ny, nx), dtype=np.float32)
    truth[:] = np.array([prop.edges[0] for prop in PROPERTIES.values()])[:, None, None]
    valid = np.zeros(truth.shape, dtype=bool)
    mass_index = list(PROPERTIES).index("stellar_mass")
    listing = []
    for _ in range(count):
        while True:
            x, y = rng.uniform(0, nx), rng.uniform(0, ny)
            if np.hypot(x - nx / 2, y - ny / 2) > min(nx, ny) / 8:
                break
        redshift = float(rng.uniform(0.02**3, 0.25**3) ** (1 / 3))
        p = gal.draw_galaxy(rng, rng.uniform(9.0, 11.5))
        finish_kind("normal", p, rng)
        _, kpc_per_pixel, tables = _galaxy_scales(redshift, sps)
        reach = 8 * 10 ** p["log_re_disc"] / kpc_per_pixel
        box = int(np.clip(np.ceil(reach), *NEIGHBOUR_BOX))
        x0, y0 = int(x) - box // 2, int(y) - box // 2
        acc = _Accumulator((box, box))
        _render_galaxy(
            acc, p, (x - x0, y - y0), kpc_per_pixel, sps, tables, rng, {}, ""
        )
        lit = _light(acc, p, redshift, kpc_per_pixel, sps, tables, rng)
        nb_truth, nb_valid = _truth_maps(acc, lit["young_living"], lit["young_log_z"])
        inside = (
            slice(max(y0, 0), min(y0 + box, ny)),
            slice(max(x0, 0), min(x0 + box, nx)),
        )
        local = (
            slice(inside[0].start - y0, inside[0].stop - y0),
            slice(inside[1].start - x0, inside[1].stop - x0),
        )
        light[(slice(None), *inside)] += lit["galaxy"][(slice(None), *local)]
        more = nb_valid[mass_index][local] & (
            ~valid[mass_index][inside]
            | (nb_truth[mass_index][local] > truth[mass_index][inside])
        )
        truth[(slice(None), *inside)] = np.where(
            more, nb_truth[(slice(None), *local)], truth[(slice(None), *inside)]
        )
        valid[(slice(None), *inside)] = np.where(
            more, nb_valid[(slice(None), *local)], valid[(slice(None), *inside)]
        )
        listing.append(
            {
                "x": float(x),
                "y": float(y),
                "redshift": redshift,
                "log_mstar": float(p["log_mstar"]),
                "log_sfr": float(p["log_sfr"]),
                "flux": lit["galaxy"].sum(axis=(-2, -1)).tolist(),
            }
        )
    return light, truth, valid, listing


def _agn_fluxes(flux_r):
    """Return the ugriz fluxes of a nucleus: f_nu ~ nu^-0.44 (Vanden Berk+01)."""
    return flux_r * (cam._LAMBDA / cam._LAMBDA[2]) ** 0.44


def _draw_setup(rng, overrides, population):
    """Kind, parameters, redshift and companion of one mock (overrides applied)."""
    kind = overrides.pop("kind", None)
    drawn = draw_kind(rng, population)
    kind = drawn if kind is None else kind
    if kind not in KINDS:
        msg = f"unknown kind {kind!r}; use one of {', '.join(KINDS)}"
        raise PicassoInputError(msg)
    traits = draw_traits(kind, rng)
    p = gal.draw_galaxy(rng, overrides.pop("log_mstar", None), traits=traits)
    finish_kind(kind, p, rng)
    redshift = _draw_redshift(rng, p["log_mstar"])
    has_companion = float(kind == "merger" or rng.uniform() < 0.2)
    redshift = float(overrides.pop("redshift", redshift))
    has_companion = float(overrides.pop("companion", has_companion))
    for key, value in overrides.items():
        if key not in p:
            msg = f"unknown parameter {key!r} in overrides; known: {', '.join(p)}"
            raise PicassoInputError(msg)
        p[key] = float(value)
    if not NEARBY_MIN_REDSHIFT <= redshift <= REDSHIFT_RANGE[1]:
        msg = (
            f"redshift {redshift} is outside the generator's range "
            f"{NEARBY_MIN_REDSHIFT}-{REDSHIFT_RANGE[1]}"
        )
        raise PicassoInputError(msg)
    return kind, p, redshift, has_companion


def make_mock(
    seed, *, size=256, overrides=None, field=None, population="default", sky=None
):
    """Make one mock SDSS galaxy with its truth maps.

    Parameters
    ----------
    seed : int or `~numpy.random.SeedSequence`
        Everything about the mock follows from it (see `galaxy_seed`).
    size : int
        Side of the square image in pixels (0.396 arcsec each).
    overrides : dict, optional
        Values for parameters of `draw_galaxy` (e.g. ``log_mstar``) and for
        ``kind`` (one of `KINDS`), ``redshift``, ``companion`` (0 or 1);
        useful for tests.
    field : str, optional
        Key of `MEASURED_FIELDS` whose observing conditions to use; a random
        one by default. Ignored with ``sky``.
    population : str
        Preset (key of `POPULATIONS`): ``"default"`` or ``"shift"``, its mix
        of kinds and, with the model camera, its observing conditions
        (`~picasso_astro.training.mocks._kinds.OBSERVING`).
    sky : `~picasso_astro.training.mocks.SkyFrames`, optional
        Real SDSS frames to render the mock into (at a blank-sky position of
        one of them) instead of Gaussian sky noise and synthetic stars.

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
    if population not in POPULATIONS:
        msg = f"unknown population {population!r}; use one of {', '.join(POPULATIONS)}"
        raise PicassoInputError(msg)
    overrides = dict(overrides or {})
    rng = np.random.default_rng(_seed_sequence(seed))
    sps = load_sps_table()
    shape = (int(size), int(size))
    extras = {}

    kind, p, redshift, has_companion = _draw_setup(rng, overrides, population)
    distance_modulus, kpc_per_pixel, tables = _galaxy_scales(redshift, sps)
    extras["kind"] = kind

    params = {"generator_version": float(GENERATOR_VERSION), "redshift": redshift}
    params["kind"] = float(KINDS.index(kind))
    for name in KINDS[1:]:
        params[f"is_{name}"] = float(kind == name)
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

    # A physically associated companion at the same redshift and part of the
    # truth: 1:30 to 1:2 at 1.5-5 disc R_e, or for mergers 1:4 to 1:1 within
    # 0.3-2 R_e (two nuclei), with tidal tails of its own.
    merger = kind == "merger"
    ratio = -rng.uniform(0.0, 0.6) if merger else rng.uniform(-1.5, -0.3)
    companion_traits = draw_traits("merger", rng) if merger else None
    companion = gal.draw_galaxy(rng, p["log_mstar"] + ratio, traits=companion_traits)
    finish_kind("merger" if merger else "normal", companion, rng)
    reach = (0.3, 2.0) if merger else (1.5, 5.0)
    separation = rng.uniform(*reach) * 10 ** p["log_re_disc"] / kpc_per_pixel
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

    lit = _light(acc, p, redshift, kpc_per_pixel, sps, tables, rng)
    galaxy, lines = lit["galaxy"], lit["lines"]
    truth, truth_valid = _truth_maps(acc, lit["young_living"], lit["young_log_z"])
    for k, band in enumerate(BANDS):
        params[f"flux_{band}"] = float(galaxy[k].sum())
        params[f"line_fraction_{band}"] = float(
            lines[k].sum() / max(galaxy[k].sum(), 1e-30)
        )
        params[f"flux_nodust_{band}"] = float(lit["nodust"][k])
    params["log_mstar_image"] = float(
        np.log10((acc.sums["mass_old"] + lit["young_living"]).sum() * kpc_per_pixel**2)
    )
    # A bright nucleus: light only, the truth stays the host's.
    agn = _agn_fluxes(p["agn_fraction"] * params["flux_r"])
    for k, band in enumerate(BANDS):
        params[f"agn_flux_{band}"] = float(agn[k])
    if p["agn_fraction"] > 0:
        cam.add_point_sources(
            galaxy, np.array([centre[0]]), np.array([centre[1]]), agn[None, :]
        )

    neighbour_light, neighbour_truth, neighbour_valid, listing = _truth_neighbours(
        rng, shape, sps
    )
    extras["truth_neighbours"] = listing
    params["n_truth_neighbours"] = float(len(listing))
    if sky is None:
        observed = gaussian_sky(
            rng, galaxy, neighbour_light, shape, field, params, OBSERVING[population]
        )
    else:
        observed = sky.observe(rng, galaxy, neighbour_light, params)
    images, contaminant, owner, stars, neighbours = observed
    extras["stars"] = stars
    extras["neighbours"] = neighbours
    params = {key: float(value) for key, value in params.items()}
    return Mock(
        images,
        truth,
        truth_valid,
        contaminant,
        params,
        extras,
        owner=owner,
        neighbour_truth=neighbour_truth,
        neighbour_truth_valid=neighbour_valid,
    )


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
