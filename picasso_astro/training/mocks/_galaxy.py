"""One galaxy: draw its parameters from scaling relations, evaluate its fields."""

import numpy as np
from scipy.special import gamma

from . import _relations as rel

__all__ = [
    "draw_galaxy",
    "galaxy_fields",
    "median_delta_ms",
    "tidal_tails",
    "young_light_pixels",
]

#: Age of the Universe today in log10(yr) (Planck 2018: 13.8 Gyr), the cap on
#: stellar ages.
LOG_AGE_UNIVERSE = np.log10(13.8e9)
#: Mean age of the star-forming component (constant SFR over 100 Myr).
YOUNG_AGE_YR = 5.0e7
#: Points of the radial grids of mass-to-light ratios, ages and metallicities.
RADIAL_GRID = 2048
#: Helium and metals: total cold gas = 1.36 (HI + H2).
HELIUM_FACTOR = 1.36


def _sersic_b(n):
    return 2 * n - 1 / 3 + 0.009876 / n


def draw_galaxy(rng, log_mstar=None, *, traits=None):
    """Draw the global parameters of one galaxy from the scaling relations.

    Parameters
    ----------
    rng : `~numpy.random.Generator`
    log_mstar : float, optional
        Fix the stellar mass; drawn uniformly in 8.5-11.5 otherwise (flat in
        log mass so that all masses are equally well trained), or in the
        kind's range.
    traits : dict, optional
        From `~picasso_astro.training.mocks._kinds.draw_traits`: what a rare
        kind of galaxy sets instead of the relations (an ordinary galaxy if
        omitted).

    Returns
    -------
    params : dict of str to float
    """
    t = traits or {}
    p = {}
    if log_mstar is None:
        log_mstar = rng.uniform(*t.get("mass_range", (8.5, 11.5)))
    p["log_mstar"] = log_mstar
    quenched = rng.uniform() < rel.quenched_fraction(log_mstar)
    if t.get("quenched") is not None:
        quenched = t["quenched"]
    p["quenched"] = float(quenched)
    if quenched:
        delta_ms = min(rng.normal(-1.3, 0.4), -0.6)
    else:
        delta_ms = rng.normal(0.0, rel.MAIN_SEQUENCE_SCATTER)
    if t.get("delta_ms") is not None:
        delta_ms = t["delta_ms"]
    delta_ms += t.get("delta_ms_shift", 0.0)
    p["delta_ms"] = delta_ms
    p["log_sfr"] = float(rel.main_sequence_sfr(log_mstar)) + delta_ms

    # Bulge-to-total rises with mass and is higher in passive galaxies
    # (e.g. Bluck et al. 2014); drawn from a Beta distribution around the mean.
    mean_bt = np.clip(
        0.05 + 0.15 * (log_mstar - 8.5) + (0.3 if quenched else 0.0), 0.02, 0.9
    )
    p["bulge_fraction"] = float(rng.beta(4 * mean_bt + 0.5, 4 * (1 - mean_bt) + 0.5))
    if t.get("bulge_fraction") is not None:
        p["bulge_fraction"] = float(t["bulge_fraction"])
    log_re, scatter = rel.disc_effective_radius(log_mstar)
    p["log_re_disc"] = float(
        log_re + rng.normal(0, scatter) + t.get("re_disc_offset", 0.0)
    )
    log_mbulge = log_mstar + np.log10(max(p["bulge_fraction"], 1e-3))
    log_re_b, scatter_b = rel.spheroid_effective_radius(log_mbulge)
    log_re_b = log_re_b + rng.normal(0, scatter_b) + t.get("re_bulge_offset", 0.0)
    p["log_re_bulge"] = float(np.clip(log_re_b, np.log10(0.15), p["log_re_disc"] - 0.1))
    # Up to n = 8: compact early types and massive bulges (Graham & Driver
    # 2005, PASA 22, 118) have the steep central cusps the model must reach.
    p["sersic_n"] = float(
        np.clip(1.5 + 3.5 * p["bulge_fraction"] + rng.normal(0, 0.8), 1.0, 8.0)
    )
    if t.get("sersic_n") is not None:
        p["sersic_n"] = float(t["sersic_n"])
    p["inclination_deg"] = float(np.degrees(np.arccos(rng.uniform(0, 1))))
    p["position_angle_deg"] = rng.uniform(0, 180)
    p["disc_thickness"] = rng.uniform(0.1, 0.25)
    p["bulge_axis_ratio"] = rng.uniform(0.6, 1.0)

    spiral = (not quenched and rng.uniform() < 0.75) or (
        quenched and rng.uniform() < 0.15
    )
    p["arm_count"] = float(rng.choice([2, 2, 3, 4]) if spiral else 0)
    p["arm_pitch_deg"] = rng.uniform(10, 30)
    p["arm_phase"] = rng.uniform(0, 2 * np.pi)
    p["arm_amplitude_old"] = rng.uniform(0.05, 0.25) if spiral else 0.0
    p["arm_amplitude_sf"] = rng.uniform(0.4, 0.9) if spiral else 0.0
    barred = rng.uniform() < 0.3 + 0.1 * (log_mstar > 10)
    p["bar_fraction"] = rng.uniform(0.05, 0.2) if barred else 0.0
    p["bar_length"] = rng.uniform(0.5, 1.2)  # in disc R_e
    p["bar_angle_deg"] = rng.uniform(0, 180)
    p["clump_count"] = float(
        0 if quenched else rng.poisson(2 + 3 * max(delta_ms + 0.5, 0))
    )
    p["clump_sfr_fraction"] = rng.uniform(0.05, 0.3) if p["clump_count"] else 0.0

    # Gas-phase and stellar metallicity at R_e with gradients in dex per R_e:
    # -0.1 for the gas (Sanchez et al. 2014, A&A 563, A49, CALIFA), about -0.1
    # for stellar metallicity and -0.1 in log age (Gonzalez Delgado et al. 2015,
    # A&A 581, A103); passive galaxies have flatter age gradients.
    oh, scatter_oh = rel.gas_metallicity_mzr(log_mstar)
    p["oh_re"] = float(oh + rng.normal(0, scatter_oh) + t.get("oh_offset", 0.0))
    p["oh_gradient"] = rng.normal(-0.1, 0.04)
    logz, scatter_z = rel.stellar_metallicity_mzr(log_mstar)
    p["logz_disc_re"] = float(np.clip(logz + rng.normal(0, scatter_z), -2.0, 0.5))
    p["logz_gradient"] = rng.normal(-0.1, 0.04)
    p["logz_bulge"] = float(
        np.clip(p["logz_disc_re"] + rng.uniform(0.0, 0.2), -2.0, 0.6)
    )
    # Mass-weighted ages: older in massive and in passive galaxies (Gallazzi et
    # al. 2005, fig. 8), with a spread of about 0.15 dex; bulges are old.
    # Galaxies just below the main sequence (-1 < delta < -0.6) quenched
    # recently: younger, and their discs keep an extended star-formation
    # history (the green valley).
    if quenched:
        base_age = 9.95 + 0.05 * (log_mstar - 10) - (0.15 if delta_ms > -1.0 else 0.0)
        age_scatter = 0.12
    else:
        base_age = 9.65 + 0.12 * (log_mstar - 10)
        age_scatter = 0.15
    p["log_age_disc_re"] = float(
        np.clip(base_age + rng.normal(0, age_scatter), 8.8, LOG_AGE_UNIVERSE)
    )
    p["log_age_gradient"] = rng.normal(-0.05 if quenched else -0.12, 0.04)
    p["log_age_bulge"] = float(np.clip(rng.normal(9.98, 0.06), 9.6, LOG_AGE_UNIVERSE))
    if t.get("log_age_disc") is not None:
        p["log_age_disc_re"] = float(t["log_age_disc"])
        p["log_age_gradient"] = rng.normal(0.05, 0.03)
    if t.get("log_age_bulge") is not None:
        p["log_age_bulge"] = float(t["log_age_bulge"])

    # Catinella et al. medians include passive galaxies: the offset from the
    # main sequence is taken relative to the population median at this mass,
    # so that the median HI fraction of the mocks is theirs.
    log_fhi, scatter_hi = rel.hi_fraction(
        log_mstar, delta_ms - median_delta_ms(log_mstar)
    )
    p["log_mhi"] = float(
        log_mstar
        + np.clip(
            log_fhi + rng.normal(0, scatter_hi) + t.get("hi_offset", 0.0), -3.0, 1.2
        )
    )
    log_d, scatter_d = rel.hi_mass_size(p["log_mhi"])
    p["log_d_hi"] = float(log_d + rng.normal(0, scatter_d))
    # HI discs extend beyond the stars: D_HI ~ 1.7 D_25 (Broeils & Rhee 1997,
    # A&A 324, 877), i.e. R_HI of 2-3 disc R_e. Star-forming discs drawn large
    # for their mass get the HI mass that Wang et al. (2016) require for
    # R_HI >= 1.5 R_e (large discs are gas rich, Huang et al. 2012, ApJ 756, 113).
    min_log_d = np.log10(2 * 1.5 * 10 ** p["log_re_disc"])
    if not quenched and p["log_d_hi"] < min_log_d:
        p["log_mhi"] += (min_log_d - p["log_d_hi"]) / 0.506
        p["log_d_hi"] = float(min_log_d)
    # HI saturates near 9 M_sun/pc^2 (Bigiel et al. 2008, AJ 136, 2846); the
    # HI deficit in the centre, where gas is molecular, is deeper in passive and
    # bulgy galaxies.
    # The flat core must be able to hold the HI inside D_HI/2: at least 1.3 times
    # the mean surface density that the mass-size relation implies.
    mean_inside = 10 ** p["log_mhi"] / (np.pi * (10 ** p["log_d_hi"] / 2) ** 2) / 1e6
    p["hi_saturation"] = max(rng.uniform(5.0, 10.0), 1.3 * mean_inside)
    p["hi_hole_depth"] = float(
        np.clip(rng.uniform(0.1, 0.6) + 0.4 * p["bulge_fraction"], 0, 0.95)
    )
    p["hi_hole_radius"] = rng.uniform(0.4, 1.0)  # in disc R_e
    # H-alpha discs are slightly larger than stellar discs (Nelson et al. 2016,
    # ApJ 828, 27); star formation quenches inside-out (Tacchella et al. 2015,
    # Science 348, 314): the central suppression radius grows with quenching.
    p["sfr_scale_ratio"] = rng.uniform(1.0, 1.3)
    p["quench_radius"] = rng.uniform(0.6, 1.5) if quenched else rng.uniform(0.0, 0.3)
    # Birth clouds: tau_V = 0.7 on average, a third more than the diffuse
    # dust, as Charlot & Fall (2000, ApJ 539, 718) fit to starbursts (total
    # 1.0, mu = 0.3); the emission lines cross them, so that the lines lose
    # about 1 mag of H-alpha in all, as SDSS Balmer decrements give
    # (Brinchmann et al. 2004, MNRAS 351, 1151).
    p["birth_cloud_tau_v"] = rng.uniform(0.4, 1.0)
    return p


def median_delta_ms(log_mstar):
    """Median offset from the main sequence of all galaxies of a mass.

    Star-forming galaxies scatter by `MAIN_SEQUENCE_SCATTER` about the main
    sequence, quenched ones (a share `quenched_fraction`) lie about 1.3 dex
    below with 0.4 dex scatter, as `draw_galaxy` draws them; the median falls
    among the star-forming ones while fewer than half are quenched.

    Parameters
    ----------
    log_mstar : float

    Returns
    -------
    delta : float
        dex.
    """
    from scipy.stats import norm

    f_q = float(rel.quenched_fraction(log_mstar))
    if f_q < 0.5:
        return float(rel.MAIN_SEQUENCE_SCATTER * norm.ppf((0.5 - f_q) / (1 - f_q)))
    return float(-1.3 + 0.4 * norm.ppf(0.5 / f_q))


class Geometry:
    """Sky-plane to galaxy-plane coordinates for one galaxy."""

    def __init__(self, p, x, y):
        pa = np.radians(p["position_angle_deg"])
        cos_i = np.cos(np.radians(p["inclination_deg"]))
        sin_i2 = 1 - cos_i**2
        self.q_disc = np.sqrt(cos_i**2 + p["disc_thickness"] ** 2 * sin_i2)
        self.q_bulge = np.sqrt(cos_i**2 + p["bulge_axis_ratio"] ** 2 * sin_i2)
        major = x * np.cos(pa) + y * np.sin(pa)
        minor = -x * np.sin(pa) + y * np.cos(pa)
        self.disc_x = major
        self.disc_y = minor / self.q_disc
        self.radius = np.hypot(self.disc_x, self.disc_y)
        self.bulge_radius = np.hypot(major, minor / self.q_bulge)

    def azimuth(self):
        """Azimuth in the disc plane."""
        return np.arctan2(self.disc_y, self.disc_x)


def _hi_profile_scale(p):
    """Exponential scale of the HI disc outside its saturated core.

    The profile is ``min(S, A exp(-R/r_s))``; ``A`` and ``r_s`` are fixed by the
    HI mass and by Sigma_HI(D_HI/2) = 1 M_sun/pc^2 (Wang et al. 2016).
    """
    r1 = 10 ** p["log_d_hi"] / 2
    sat = p["hi_saturation"]
    mass = 10 ** p["log_mhi"] / 1e6  # in M_sun/pc^2 kpc^2
    scales = r1 * np.logspace(-2, 0.3, 200)
    core = np.clip(r1 - scales * np.log(sat), 0, None)
    with_core = np.pi * core**2 * sat + 2 * np.pi * sat * scales * (core + scales)
    without = 2 * np.pi * np.exp(r1 / scales) * scales**2
    total = np.where(core > 0, with_core, without)
    best = np.argmin(np.abs(np.log(total / mass)))
    return scales[best], np.exp(r1 / scales[best])


def _radial_norm(profile, r_max):
    radius = np.linspace(0, r_max, 2000)
    values = profile(radius) * 2 * np.pi * radius
    return np.trapezoid(values, radius)


def _arm_phase(p, geometry, scale):
    pitch = np.radians(p["arm_pitch_deg"])
    log_r = np.log(np.maximum(geometry.radius, 1e-3) / scale)
    return (
        p["arm_count"] * (geometry.azimuth() - log_r / np.tan(pitch)) - p["arm_phase"]
    )


def galaxy_fields(p, x, y, sps, tables, *, r_max):
    """Surface densities and population sums of one galaxy at sky positions.

    Parameters
    ----------
    p : dict
        From `draw_galaxy`.
    x, y : `~numpy.ndarray`
        Sky-plane offsets from the galaxy centre in kpc.
    sps : `~picasso_astro.training.mocks._sps.SPSTable`
    tables : dict
        ``sps.at_redshift(z)``; discs of star-forming and recently quenched
        galaxies use the extended star-formation history, bulges and passive
        discs the smoothed burst.
    r_max : float
        Largest radius (kpc) the mass-to-light curves must cover.

    Returns
    -------
    fields : dict of str to `~numpy.ndarray`
        Per kpc^2 of sky: ``mass_old`` (living M_sun), ``mass_age`` (M_sun yr),
        ``mass_z`` (M_sun Z/Z_sun), ``light_old`` (5, ...) in maggies at 10 pc,
        ``sfr`` (M_sun/yr), ``hi``, ``h2`` (M_sun), ``gas_oh`` (M_sun O/H).
    """
    geo = Geometry(p, x, y)
    mstar = 10 ** p["log_mstar"]
    sfr_total = 10 ** p["log_sfr"]
    re_disc = 10 ** p["log_re_disc"]
    re_bulge = 10 ** p["log_re_bulge"]
    scale = re_disc / 1.678
    young_living = sfr_total * 1e8 * 0.79
    m_bulge = mstar * p["bulge_fraction"]
    # Stars pulled out into tidal tails (mergers) are rendered apart.
    in_body = mstar * (1 - p.get("tail_fraction", 0.0))
    m_disc_all = max(in_body - m_bulge - young_living, 0.0)
    m_bar = m_disc_all * p["bar_fraction"]
    m_disc = m_disc_all - m_bar

    window = -np.expm1(-((geo.radius / scale) ** 2))
    arm_phase = _arm_phase(p, geo, scale) if p["arm_count"] else None
    disc = m_disc / (2 * np.pi * scale**2 * geo.q_disc) * np.exp(-geo.radius / scale)
    if arm_phase is not None:
        disc = disc * (1 + p["arm_amplitude_old"] * window * np.cos(arm_phase))
    if m_bar > 0:
        angle = np.radians(p["bar_angle_deg"])
        length = p["bar_length"] * re_disc
        width = 0.3 * length
        bx = geo.disc_x * np.cos(angle) + geo.disc_y * np.sin(angle)
        by = -geo.disc_x * np.sin(angle) + geo.disc_y * np.cos(angle)
        m2 = (bx / length) ** 2 + (by / width) ** 2
        disc = disc + np.where(
            m2 < 1,
            3
            * m_bar
            / (np.pi * length * width * geo.q_disc)
            * (1 - np.minimum(m2, 1)) ** 2,
            0.0,
        )
    n = p["sersic_n"]
    b = _sersic_b(n)
    norm = (
        geo.q_bulge
        * 2
        * np.pi
        * n
        * re_bulge**2
        * np.exp(b)
        * b ** (-2 * n)
        * gamma(2 * n)
    )
    bulge = m_bulge / norm * np.exp(-b * ((geo.bulge_radius / re_bulge) ** (1 / n) - 1))

    # Populations: mass-to-light as a function of radius only (gradients are
    # radial), tabulated on a 1D grid and interpolated.
    # Radii on a grid uniform in sqrt(R / r_max): fine at small radii.
    grid = r_max * np.linspace(0, 1, RADIAL_GRID) ** 2
    disc_age = np.clip(
        p["log_age_disc_re"] + p["log_age_gradient"] * (grid / re_disc - 1),
        8.0,
        LOG_AGE_UNIVERSE,
    )
    disc_z = np.clip(
        p["logz_disc_re"] + p["logz_gradient"] * (grid / re_disc - 1), -2.3, 0.69
    )
    bulge_age = np.clip(
        p["log_age_bulge"] - 0.03 * (grid / re_bulge - 1), 9.0, LOG_AGE_UNIVERSE
    )
    bulge_z = np.clip(p["logz_bulge"] - 0.1 * (grid / re_bulge - 1), -2.3, 0.69)
    disc_family = "burst" if p["delta_ms"] <= -1.0 else "extended"
    disc_light = sps.old_light(tables[disc_family], disc_age, disc_z)
    bulge_light = sps.old_light(tables["burst"], bulge_age, bulge_z)

    def sample(radius, curves):
        """Nearest grid value of curves (k, RADIAL_GRID) at each radius."""
        position = np.sqrt(radius * np.float32(1 / r_max)) * np.float32(RADIAL_GRID - 1)
        index = np.minimum(np.rint(position).astype(np.intp), RADIAL_GRID - 1)
        return np.take(curves.astype(radius.dtype), index, axis=1)

    disc_curves = sample(geo.radius, np.vstack([disc_light, 10**disc_age, 10**disc_z]))
    bulge_curves = sample(
        geo.bulge_radius, np.vstack([bulge_light, 10**bulge_age, 10**bulge_z])
    )
    combined = disc * disc_curves + bulge * bulge_curves
    light, mass_age, mass_z = combined[:5], combined[5], combined[6]

    # Star formation: exponential disc, inside-out quenched, along the arms.
    sf_scale = scale * p["sfr_scale_ratio"]
    quench = p["quench_radius"] * re_disc

    def sf_profile(radius):
        taper = -np.expm1(-((radius / quench) ** 2)) if quench > 0 else 1.0
        return np.exp(-radius / sf_scale) * taper

    sfr_disc = sfr_total * (1 - p["clump_sfr_fraction"])
    sfr = (
        sfr_disc
        / (_radial_norm(sf_profile, 30 * sf_scale) * geo.q_disc)
        * sf_profile(geo.radius)
    )
    if arm_phase is not None:
        shaped = ((1 + np.cos(arm_phase)) / 2) ** 3 / (5 / 16)
        sfr = sfr * (1 + p["arm_amplitude_sf"] * window * (shaped - 1))

    hi_scale, hi_amp = _hi_profile_scale(p)
    hole = p["hi_hole_radius"] * re_disc

    def hi_profile(radius):
        base = np.minimum(p["hi_saturation"], hi_amp * np.exp(-radius / hi_scale))
        return base * (1 - p["hi_hole_depth"] * np.exp(-((radius / hole) ** 2)))

    hi_norm = 10 ** p["log_mhi"] / _radial_norm(hi_profile, 40 * hi_scale + 20 * hole)
    hi = hi_norm / geo.q_disc * hi_profile(geo.radius)
    if arm_phase is not None:
        hi = hi * (1 + 0.3 * p["arm_amplitude_sf"] * window * np.cos(arm_phase))
    h2 = np.maximum(rel.kennicutt_schmidt_gas(sfr * geo.q_disc) / geo.q_disc - hi, 0.0)
    oh = np.clip(p["oh_re"] + p["oh_gradient"] * (geo.radius / re_disc - 1), 7.0, 9.6)
    gas_oh = (hi + h2) * 10 ** (oh - 12)
    return {
        "mass_old": disc + bulge,
        "mass_age": mass_age,
        "mass_z": mass_z,
        "light_old": light,
        "sfr": sfr,
        "hi": hi,
        "h2": h2,
        "gas_oh": gas_oh,
    }


def clump_list(p, rng):
    """Star-forming clumps: positions in the disc plane (kpc), sizes, SFR shares."""
    count = int(p["clump_count"])
    if count == 0:
        return []
    scale = 10 ** p["log_re_disc"] / 1.678 * p["sfr_scale_ratio"]
    radius = rng.gamma(2.0, scale, count)
    angle = rng.uniform(0, 2 * np.pi, count)
    shares = rng.dirichlet(np.ones(count))
    sizes = 10 ** rng.uniform(np.log10(0.1), np.log10(0.5), count)
    return [
        {
            "x_disc": float(r * np.cos(a)),
            "y_disc": float(r * np.sin(a)),
            "sigma_kpc": float(s),
            "sfr_share": float(w),
        }
        for r, a, s, w in zip(radius, angle, sizes, shares, strict=True)
    ]


def clump_sky_positions(p, clumps):
    """Sky-plane offsets (kpc) of clumps given in the disc plane."""
    pa = np.radians(p["position_angle_deg"])
    cos_i = np.cos(np.radians(p["inclination_deg"]))
    q = np.sqrt(cos_i**2 + p["disc_thickness"] ** 2 * (1 - cos_i**2))
    out = []
    for clump in clumps:
        major = clump["x_disc"]
        minor = clump["y_disc"] * q
        out.append(
            (
                major * np.cos(pa) - minor * np.sin(pa),
                major * np.sin(pa) + minor * np.cos(pa),
            )
        )
    return out


def young_light_pixels(sps, tables, sfr, oh):
    """Formed mass, living mass and light (5, ...) of the star-forming component."""
    log_z = np.clip(oh - rel.SOLAR_OH, -2.3, 0.69)
    formed = sfr * sps.young_duration_yr
    living = formed * sps.young_live(log_z)
    light = formed * sps.young_light(tables["young"], log_z)
    return living, light, log_z


def tidal_tails(p, rng, *, blobs=16):
    """Two tidal tails as chains of round blobs, for mergers.

    Each tail leaves the galaxy on opposite sides and curls over 0.5-1.5 rad
    as it reaches 2-6 disc R_e (the long tails of major mergers, Toomre &
    Toomre 1972, ApJ 178, 623); blobs widen and fade along the tail.

    Parameters
    ----------
    p : dict
        From `draw_galaxy`, with ``tail_fraction``.
    rng : `~numpy.random.Generator`
    blobs : int
        Blobs per tail.

    Returns
    -------
    blobs : list of dict
        ``dx``, ``dy`` sky offsets from the centre (kpc), ``sigma_kpc`` and
        ``mass_share`` (of the tails' mass; all sum to one).
    """
    re_disc = 10 ** p["log_re_disc"]
    start = rng.uniform(0, 2 * np.pi)
    curl = rng.uniform(0.5, 1.5) * rng.choice([-1, 1])
    reach = rng.uniform(2.0, 6.0)
    t = (np.arange(blobs) + 0.5) / blobs
    weights = np.exp(-2 * t)
    weights = weights / (2 * weights.sum())
    out = []
    for side in (0.0, np.pi):
        radius = re_disc * (1 + (reach - 1) * t)
        angle = start + side + curl * t
        for r, a, tt, w in zip(radius, angle, t, weights, strict=True):
            out.append(
                {
                    "dx": float(r * np.cos(a)),
                    "dy": float(r * np.sin(a)),
                    "sigma_kpc": float(0.25 * re_disc * (1 + tt)),
                    "mass_share": float(w),
                }
            )
    return out
