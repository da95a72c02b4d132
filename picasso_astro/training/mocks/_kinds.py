"""Kinds of galaxy in the mock population, their rates and what sets them apart.

Most mocks are ordinary galaxies drawn from the scaling relations of
`picasso_astro.training.mocks._relations`. A share of each population is one
of the rarer kinds below, each oversampled with respect to the local volume
(the rate cited) so that a training set of tens of thousands of galaxies
holds hundreds of each:

``starburst``
    Dusty starbursts and LIRGs: 10^10-10^11.5 M_sun, 0.6-1.8 dex above the main
    sequence (SFR up to a few hundred M_sun/yr), star formation concentrated in
    the centre, patchy dust (a log-normal screen) and thick birth clouds
    (A_V 2-4 mag on young stars). LIRGs are about 1 % of galaxies above
    10^10 M_sun locally (Sanders & Mirabel 1996, ARA&A 34, 749); rate 5 %.
``post_starburst``
    E+A galaxies: quenched within the last Gyr, young mass-weighted ages and
    no current star formation. 0.2-1 % of SDSS galaxies (Goto 2007, MNRAS 381,
    187; Wild et al. 2009, MNRAS 395, 144); rate 3 %.
``compact``
    Compact early types and massive bulges: passive, bulge-dominated,
    Sersic n of 4-8, 0.1-0.4 dex smaller than the Shen et al. (2003) relation,
    central Sigma* above 10^10.5 M_sun/kpc^2. Early types are about 30 % of
    massive SDSS galaxies (Bernardi et al. 2010, MNRAS 404, 2087), the compact
    ones a few percent of those (Trujillo et al. 2009, ApJ 692, L118; Taylor et
    al. 2010, ApJ 720, 723); rate 8 %.
``agn``
    A bright point-like nucleus (type-1 AGN): a PSF-shaped source of 5-100 %
    of the host's r-band flux with the colours of the SDSS quasar composite
    (f_nu ~ nu^-0.44, Vanden Berk et al. 2001, AJ 122, 549) added to the light;
    the truth maps are the host's. Broad-line AGN are about 1 % of SDSS
    galaxies at z < 0.3 (Hao et al. 2005, AJ 129, 1783); rate 4 %.
``merger``
    Interacting pairs and mergers: a second galaxy of mass ratio 1:4 to 1:1
    within 0.3-2 disc R_e (two nuclei), both with tidal tails holding 3-10 %
    of their stars, and star formation enhanced by 0.1-0.5 dex (Ellison et al.
    2008, AJ 135, 1877). Both members are in the truth. 1-3 % of SDSS
    galaxies are mergers (Darg et al. 2010, MNRAS 401, 1043); rate 6 %.
``edge_on``
    Edge-on dusty discs (inclination 82-90 deg) with thin discs and a dust
    lane two to four times the gas-scaled dust (edge-on spirals have central
    face-on tau_V near 1, Xilouris et al. 1999, A&A 344, 868). Random
    orientations already give 10 % of discs beyond 84 deg; rate 5 % more.
``lsb``
    Low-surface-brightness discs: 0.25-0.5 dex larger than the size-mass
    relation, small bulges, gas rich (+0.3 dex HI) and metal poor (-0.2 dex).
    LSB discs are a large share of galaxies by number (McGaugh et al. 1995,
    AJ 109, 2019) but few are bright enough for the SDSS main sample; rate 7 %.

A second preset, ``shift``, with other rates (`POPULATIONS`) and other
observing conditions (`OBSERVING`: worse seeing, a noisier sky) serves as an
out-of-distribution test set; with real skies, point it at other fields.
"""

import numpy as np

__all__ = [
    "KINDS",
    "OBSERVING",
    "POPULATIONS",
    "draw_kind",
    "draw_traits",
    "finish_kind",
]

#: Every kind, in the order of the ``kind`` parameter (its index).
KINDS = (
    "normal",
    "starburst",
    "post_starburst",
    "compact",
    "agn",
    "merger",
    "edge_on",
    "lsb",
)

#: Population mixes: the share of each rare kind; ordinary galaxies fill the
#: rest. ``default`` trains models; ``shift`` tests them off their training
#: distribution (twice the rare kinds, other proportions).
POPULATIONS = {
    "default": {
        "starburst": 0.05,
        "post_starburst": 0.03,
        "compact": 0.08,
        "agn": 0.04,
        "merger": 0.06,
        "edge_on": 0.05,
        "lsb": 0.07,
    },
    "shift": {
        "starburst": 0.12,
        "post_starburst": 0.08,
        "compact": 0.05,
        "agn": 0.12,
        "merger": 0.12,
        "edge_on": 0.03,
        "lsb": 0.15,
    },
}

#: Observing conditions of each preset with the model camera: median r-band
#: seeing (arcsec) and a factor on the measured sky noise. ``shift`` has the
#: seeing of the worse quarter of SDSS imaging (about 1.6-1.7", Abazajian et
#: al. 2009) and a sky 30 % noisier (bright-sky fields).
OBSERVING = {
    "default": {"seeing_median": 1.35, "noise_scale": 1.0},
    "shift": {"seeing_median": 1.65, "noise_scale": 1.3},
}

#: Stellar-mass range (log10 M_sun) of each kind where it differs from the
#: whole population's 8.5-11.5.
MASS_RANGE = {
    "starburst": (10.0, 11.5),
    "compact": (10.3, 11.5),
    "agn": (10.0, 11.5),
    "post_starburst": (9.5, 11.0),
    "lsb": (8.5, 10.5),
}


def draw_kind(rng, population="default"):
    """Draw the kind of one galaxy from a population mix.

    Parameters
    ----------
    rng : `~numpy.random.Generator`
    population : str
        Key of `POPULATIONS`.

    Returns
    -------
    kind : str
        One of `KINDS`.
    """
    mix = POPULATIONS[population]
    u = rng.uniform()
    for kind, share in mix.items():
        if u < share:
            return kind
        u -= share
    return "normal"


def draw_traits(kind, rng):
    """Draw what a kind sets in place of the scaling relations.

    Parameters
    ----------
    kind : str
    rng : `~numpy.random.Generator`

    Returns
    -------
    traits : dict
        ``mass_range`` (low, high); ``quenched`` (bool or None: drawn);
        ``delta_ms`` (dex from the main sequence, or None: drawn);
        ``delta_ms_shift`` (dex added to a drawn offset); ``re_disc_offset``,
        ``re_bulge_offset`` (dex); ``bulge_fraction`` and ``sersic_n`` (or
        None); ``oh_offset`` and ``hi_offset`` (dex); ``log_age_disc`` and
        ``log_age_bulge`` (log10 yr, or None).
    """
    traits = {
        "mass_range": MASS_RANGE.get(kind, (8.5, 11.5)),
        "quenched": None,
        "delta_ms": None,
        "delta_ms_shift": 0.0,
        "re_disc_offset": 0.0,
        "re_bulge_offset": 0.0,
        "bulge_fraction": None,
        "sersic_n": None,
        "oh_offset": 0.0,
        "hi_offset": 0.0,
        "log_age_disc": None,
        "log_age_bulge": None,
    }
    if kind == "starburst":
        traits.update(quenched=False, delta_ms=rng.uniform(0.6, 1.8))
    elif kind == "post_starburst":
        traits.update(
            quenched=True,
            delta_ms=rng.uniform(-2.2, -1.3),
            log_age_disc=rng.uniform(8.6, 9.2),
            log_age_bulge=rng.uniform(9.2, 9.7),
        )
    elif kind == "compact":
        traits.update(
            quenched=True,
            bulge_fraction=rng.uniform(0.7, 0.95),
            sersic_n=rng.uniform(4.0, 8.0),
            re_bulge_offset=-rng.uniform(0.1, 0.4),
        )
    elif kind == "merger":
        traits.update(quenched=False, delta_ms_shift=rng.uniform(0.1, 0.5))
    elif kind == "edge_on":
        traits.update(quenched=False)
    elif kind == "lsb":
        traits.update(
            quenched=False,
            re_disc_offset=rng.uniform(0.25, 0.5),
            bulge_fraction=rng.uniform(0.0, 0.08),
            oh_offset=-0.2,
            hi_offset=0.3,
            delta_ms_shift=-0.2,
        )
    return traits


def finish_kind(kind, p, rng):
    """Set the geometry, dust and nucleus parameters of a kind in ``p``.

    Every galaxy gets ``dust_boost`` (factor on the gas-scaled dust),
    ``dust_patchiness`` (dex, log-normal scatter of the dust column),
    ``agn_fraction`` (point-source r flux over the host's) and
    ``tail_fraction`` (stellar mass share in tidal tails); ordinary values for
    an ordinary galaxy.

    Parameters
    ----------
    kind : str
    p : dict
        From `~picasso_astro.training.mocks._galaxy.draw_galaxy`; changed in
        place.
    rng : `~numpy.random.Generator`
    """
    p.update(dust_boost=1.0, dust_patchiness=0.0, agn_fraction=0.0, tail_fraction=0.0)
    if kind == "starburst":
        # Star formation in the central kpc (LIRG nuclei, Diaz-Santos et al.
        # 2010, ApJ 723, 993), dust both thick and patchy.
        p["sfr_scale_ratio"] = rng.uniform(0.15, 0.5)
        p["quench_radius"] = 0.0
        p["clump_count"] = float(rng.poisson(6))
        p["clump_sfr_fraction"] = rng.uniform(0.2, 0.5) if p["clump_count"] else 0.0
        p["birth_cloud_tau_v"] = rng.uniform(2.0, 4.0)
        p["dust_boost"] = rng.uniform(1.0, 3.0)
        p["dust_patchiness"] = rng.uniform(0.3, 0.7)
    elif kind == "post_starburst":
        p["clump_count"] = 0.0
        p["clump_sfr_fraction"] = 0.0
        p["arm_amplitude_sf"] = 0.0
    elif kind == "agn":
        p["agn_fraction"] = float(10 ** rng.uniform(np.log10(0.05), 0.0))
    elif kind == "merger":
        p["tail_fraction"] = rng.uniform(0.03, 0.1)
        p["dust_patchiness"] = rng.uniform(0.0, 0.3)
    elif kind == "edge_on":
        p["inclination_deg"] = rng.uniform(82.0, 90.0)
        p["disc_thickness"] = rng.uniform(0.07, 0.15)
        p["dust_boost"] = rng.uniform(2.0, 4.0)
        p["dust_patchiness"] = rng.uniform(0.1, 0.3)
    elif kind == "lsb":
        p["clump_count"] = float(rng.poisson(1))
        p["clump_sfr_fraction"] = rng.uniform(0.05, 0.2) if p["clump_count"] else 0.0
