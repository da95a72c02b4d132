"""Published scaling relations that set each mock galaxy's global properties.

Every function cites the relation it implements. Masses are in M_sun, sizes in
kpc, star-formation rates in M_sun/yr; ``log_mstar`` is log10 of the stellar
mass (Chabrier IMF throughout, as the BC03 tables).
"""

import numpy as np

__all__ = [
    "disc_effective_radius",
    "gas_metallicity_mzr",
    "hi_fraction",
    "hi_mass_size",
    "kennicutt_schmidt_gas",
    "main_sequence_sfr",
    "quenched_fraction",
    "spheroid_effective_radius",
    "stellar_metallicity_mzr",
]

#: Solar oxygen abundance 12 + log(O/H) (Asplund et al. 2009, ARA&A 47, 481).
SOLAR_OH = 8.69

#: Intrinsic scatter of the star-forming main sequence in dex (Speagle et al.
#: 2014 find 0.2 dex intrinsic, about 0.3 dex observed; we use the observed).
MAIN_SEQUENCE_SCATTER = 0.3


def main_sequence_sfr(log_mstar):
    """Star-forming main sequence at z ~ 0.

    Renzini & Peng (2015, ApJ 801, L29), their eq. 1 fitted to SDSS:
    ``log SFR = 0.76 log M* - 7.64``.

    Parameters
    ----------
    log_mstar : float or `~numpy.ndarray`
        log10 stellar mass in M_sun.

    Returns
    -------
    log_sfr : float or `~numpy.ndarray`
        log10 SFR in M_sun/yr on the ridge line.
    """
    return 0.76 * np.asarray(log_mstar) - 7.64


def quenched_fraction(log_mstar):
    """Fraction of quenched (passive) galaxies at fixed stellar mass.

    Mass quenching of Peng et al. (2010, ApJ 721, 193), eq. 13 at low density:
    ``f_q = 1 - exp(-M*/M_q)`` with the Schechter mass ``M_q = 10^10.6 M_sun``,
    plus a floor of 5 % for environment (satellite) quenching, their ``eps_rho``.

    Parameters
    ----------
    log_mstar : float or `~numpy.ndarray`

    Returns
    -------
    fraction : float or `~numpy.ndarray`
    """
    mass_term = 1.0 - np.exp(-(10 ** (np.asarray(log_mstar) - 10.6)))
    return 0.05 + 0.95 * mass_term


def disc_effective_radius(log_mstar):
    """Half-light radius of late-type (disc) galaxies.

    van der Wel et al. (2014, ApJ 788, 28), table 1, late types at z = 0.25:
    ``R_e = 10^0.86 kpc (M*/5e10 M_sun)^0.25``, scatter 0.16 dex.

    Parameters
    ----------
    log_mstar : float or `~numpy.ndarray`

    Returns
    -------
    log_re : float or `~numpy.ndarray`
        log10 R_e in kpc.
    scatter : float
        Intrinsic scatter in dex.
    """
    return 0.86 + 0.25 * (np.asarray(log_mstar) - np.log10(5e10)), 0.16


def spheroid_effective_radius(log_mstar):
    """Half-light radius of early types and bulges.

    Shen et al. (2003, MNRAS 343, 978), eq. 14 for early types in SDSS:
    ``R_50 = 2.88e-6 kpc (M*/M_sun)^0.56``, scatter about 0.1 dex at high mass.

    Parameters
    ----------
    log_mstar : float or `~numpy.ndarray`
        log10 mass of the spheroid.

    Returns
    -------
    log_re : float or `~numpy.ndarray`
    scatter : float
    """
    return np.log10(2.88e-6) + 0.56 * np.asarray(log_mstar), 0.1


def gas_metallicity_mzr(log_mstar):
    """Gas-phase mass-metallicity relation.

    Tremonti et al. (2004, ApJ 613, 898), eq. 3:
    ``12 + log(O/H) = -1.492 + 1.847 x - 0.08026 x^2`` with ``x = log M*``,
    valid for 8.5 < x < 11.5; scatter 0.1 dex.

    Parameters
    ----------
    log_mstar : float or `~numpy.ndarray`

    Returns
    -------
    oh : float or `~numpy.ndarray`
        12 + log10(O/H).
    scatter : float
    """
    x = np.asarray(log_mstar)
    return -1.492 + 1.847 * x - 0.08026 * x**2, 0.1


#: Gallazzi et al. (2005, MNRAS 362, 41), table 2: median log(Z*/Z_sun) against
#: log M*, from SDSS absorption indices.
_GALLAZZI_LOG_MSTAR = np.array(
    [
        8.91,
        9.11,
        9.31,
        9.51,
        9.72,
        9.91,
        10.11,
        10.31,
        10.51,
        10.72,
        10.91,
        11.11,
        11.31,
        11.51,
    ]
)
_GALLAZZI_LOG_Z = np.array(
    [
        -0.60,
        -0.61,
        -0.65,
        -0.61,
        -0.52,
        -0.41,
        -0.23,
        -0.11,
        -0.01,
        0.04,
        0.07,
        0.10,
        0.12,
        0.13,
    ]
)


def stellar_metallicity_mzr(log_mstar):
    """Stellar mass-metallicity relation.

    Gallazzi et al. (2005, MNRAS 362, 41), table 2 medians, interpolated (and
    extrapolated flat below 10^8.9 M_sun); the 16-84 % range is about +-0.2 dex.

    Parameters
    ----------
    log_mstar : float or `~numpy.ndarray`

    Returns
    -------
    log_z : float or `~numpy.ndarray`
        log10(Z*/Z_sun).
    scatter : float
    """
    return np.interp(log_mstar, _GALLAZZI_LOG_MSTAR, _GALLAZZI_LOG_Z), 0.2


def hi_fraction(log_mstar, delta_ms):
    """HI-to-stellar mass ratio.

    xGASS, Catinella et al. (2018, MNRAS 476, 875), table 1 (weighted medians
    including non-detections): log(M_HI/M*) falls from -0.1 at 10^9.1 M_sun to
    -2.0 at 10^11.2 M_sun, i.e. a slope of about -0.9; at fixed mass the gas
    fraction rises with specific SFR (their fig. 9), modelled here as
    +0.5 dex per dex of main-sequence offset. Scatter about 0.3 dex.

    Parameters
    ----------
    log_mstar : float or `~numpy.ndarray`
    delta_ms : float or `~numpy.ndarray`
        Offset from the main sequence in dex, relative to the mean offset of
        all galaxies (passive included) of that mass.

    Returns
    -------
    log_fraction : float or `~numpy.ndarray`
        log10(M_HI/M*).
    scatter : float
    """
    log_fraction = -0.1 - 0.92 * (np.asarray(log_mstar) - 9.1) + 0.5 * delta_ms
    return log_fraction, 0.3


def hi_mass_size(log_mhi):
    """HI mass-size relation.

    Wang et al. (2016, MNRAS 460, 2143), eq. 2:
    ``log D_HI = 0.506 log M_HI - 3.293``, with D_HI in kpc the diameter where
    the HI surface density falls to 1 M_sun/pc^2; scatter 0.06 dex.

    Parameters
    ----------
    log_mhi : float or `~numpy.ndarray`

    Returns
    -------
    log_diameter : float or `~numpy.ndarray`
        log10 D_HI in kpc.
    scatter : float
    """
    return 0.506 * np.asarray(log_mhi) - 3.293, 0.06


def kennicutt_schmidt_gas(sigma_sfr):
    """Gas surface density from SFR surface density.

    Kennicutt (1998, ApJ 498, 541), eq. 4 inverted:
    ``Sigma_SFR = 2.5e-4 (Sigma_gas / (M_sun pc^-2))^1.4 M_sun yr^-1 kpc^-2``.

    Parameters
    ----------
    sigma_sfr : `~numpy.ndarray`
        M_sun yr^-1 kpc^-2.

    Returns
    -------
    sigma_gas : `~numpy.ndarray`
        HI + H2 surface density in M_sun kpc^-2 (no helium).
    """
    return 1e6 * (np.maximum(sigma_sfr, 0.0) / 2.5e-4) ** (1 / 1.4)
