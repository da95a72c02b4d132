"""Nebular emission lines of star-forming regions, through the SDSS filters.

The H-alpha luminosity follows the SFR (Kennicutt & Evans 2012, ARA&A 50, 531:
``log SFR = log L(H-alpha) - 41.27``, Kroupa/Chabrier IMF); H-beta is H-alpha /
2.86 (case B, Osterbrock & Ferland 2006); [NII] and [OIII] follow the gas
metallicity through the N2 and O3N2 calibrations of Pettini & Pagel (2004,
MNRAS 348, L59), ``12 + log(O/H) = 8.90 + 0.57 N2 = 8.73 - 0.32 O3N2``;
[OII] 3727 is 0.57 H-alpha (the ratio of the Kennicutt 1998 SFR calibrations);
[SII] 6717, 6731 together are 0.35 H-alpha (log [SII]/H-alpha = -0.45, the
star-forming locus of Kewley et al. 2006, MNRAS 372, 961), in the ratio 1.4 : 1
of low-density HII regions (Osterbrock & Ferland 2006).
"""

import numpy as np

from ._sps import _tau_scale_at

__all__ = ["LINE_WAVELENGTHS", "line_fluxes"]

#: Rest wavelengths in Angstrom (air) of the lines followed.
LINE_WAVELENGTHS = {
    "oii_3727": 3727.4,
    "hbeta": 4861.3,
    "oiii_4959": 4958.9,
    "oiii_5007": 5006.8,
    "nii_6548": 6548.0,
    "halpha": 6562.8,
    "nii_6584": 6583.4,
    "sii_6717": 6716.4,
    "sii_6731": 6730.8,
}

#: log10 of H-alpha luminosity (erg/s) per M_sun/yr of star formation.
LOG_HALPHA_PER_SFR = 41.27

_C_ANGSTROM = 2.998e18
_AB_ZERO = 3631e-23  # erg s^-1 cm^-2 Hz^-1


def band_coefficients(sps, redshift):
    """Nanomaggies per erg s^-1 cm^-2 of each line in each band, shape (5, nlines).

    For a line of flux F at observed wavelength lambda, the photon-counting AB
    flux in a band of response R is ``F R(lambda) lambda / (c 3631 Jy
    integral(R / lambda))``.
    """
    wavelength = sps.filter_wavelength
    norm = np.trapezoid(sps.filter_response / wavelength, wavelength, axis=1)
    observed = np.array(list(LINE_WAVELENGTHS.values())) * (1 + redshift)
    response = np.stack(
        [np.interp(observed, wavelength, sps.filter_response[b]) for b in range(5)]
    )
    return 1e9 * response * observed / (_C_ANGSTROM * _AB_ZERO * norm[:, None])


def line_fluxes(sps, redshift, sfr_pixel, oh, distance_modulus, tau_v, birth_tau_v):
    """Emission-line light per pixel and band in nanomaggies.

    Parameters
    ----------
    sps : `~picasso_astro.training.mocks._sps.SPSTable`
    redshift : float
    sfr_pixel : `~numpy.ndarray`
        SFR in each pixel, M_sun/yr.
    oh : `~numpy.ndarray`
        12 + log(O/H) of the gas.
    distance_modulus : float
    tau_v : `~numpy.ndarray`
        Diffuse V-band optical depth through the disc.
    birth_tau_v : float
        Birth-cloud V-band screen around the HII regions.

    Returns
    -------
    flux : `~numpy.ndarray`
        Shape (5,) + sfr_pixel.shape, float32.
    """
    coefficients = band_coefficients(sps, redshift)  # (5, nlines)
    names = list(LINE_WAVELENGTHS)
    luminosity_distance_cm = 10 ** (distance_modulus / 5 + 1) * 3.0857e18
    halpha = (
        sfr_pixel * 10**LOG_HALPHA_PER_SFR / (4 * np.pi * luminosity_distance_cm**2)
    ).astype(np.float32)
    n2 = np.clip((oh - 8.90) / 0.57, -2.5, -0.2)
    o3n2 = np.clip((8.73 - oh) / 0.32, -1.0, 2.0)
    nii = (10**n2).astype(np.float32)
    oiii_over_hbeta = (10 ** (o3n2 + n2)).astype(np.float32)
    ratio = {
        "halpha": 1.0,
        "hbeta": 1 / 2.86,
        "nii_6584": nii,
        "nii_6548": nii / 3,
        "oiii_5007": oiii_over_hbeta / 2.86,
        "oiii_4959": oiii_over_hbeta / 2.86 / 3,
        "oii_3727": 0.57,
        "sii_6717": 0.35 * 1.4 / 2.4,
        "sii_6731": 0.35 / 2.4,
    }
    wavelengths = np.array(list(LINE_WAVELENGTHS.values()))
    screen = np.exp(-_tau_scale_at(wavelengths) * birth_tau_v)
    out = np.zeros((5, *np.shape(sfr_pixel)), dtype=np.float32)
    tau_v = np.maximum(np.asarray(tau_v, dtype=np.float32), np.float32(1e-6))
    for band in range(5):
        weights = coefficients[band] * screen
        if not np.any(weights > 0):
            continue
        # One slab transmission per band, at the flux-weighted line wavelength.
        mean_wavelength = np.sum(weights * wavelengths) / np.sum(weights)
        tau = np.float32(_tau_scale_at(mean_wavelength)) * tau_v
        slab = -np.expm1(-tau) / tau
        total = sum(
            np.float32(weights[i]) * ratio[name]
            for i, name in enumerate(names)
            if weights[i] > 0
        )
        out[band] = halpha * total * slab
    return out
