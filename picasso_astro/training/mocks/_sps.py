"""Stellar-population light: the BC03 table through the SDSS filters, and dust."""

from functools import lru_cache
from importlib.resources import files

import numpy as np

__all__ = ["SPSTable", "birth_cloud_screen", "dust_transmission", "load_sps_table"]

#: Rest-frame effective wavelengths of the SDSS filters in Angstrom (speclite
#: ``sdss2010-*``, Doi et al. 2010).
EFFECTIVE_WAVELENGTH = np.array([3614.0, 4749.0, 6206.0, 7526.0, 8947.0])

#: A_V per unit gas column at solar metallicity: N_H / A_V = 1.87e21 cm^-2 mag^-1
#: (Bohlin, Savage & Drake 1978, N_H/E(B-V) = 5.8e21, R_V = 3.1), and
#: 1 M_sun/pc^2 of hydrogen (X = 0.74) is 9.24e19 H cm^-2.
AV_PER_GAS = 9.24e19 / 1.87e21 / 1e6  # mag per (M_sun kpc^-2) of HI+H2


class SPSTable:
    """Magnitudes per unit stellar mass against age, metallicity and redshift.

    Built by ``scripts/make_sps_table.py`` from BC03 (Bruzual & Charlot 2003)
    through the SDSS filters. See that script for the meaning of each array.
    """

    def __init__(self, arrays):
        self.redshift = arrays["redshift"].astype(float)
        self.log_metallicity = arrays["log_metallicity"].astype(float)
        self.log_age = arrays["log_age"].astype(float)
        self.abs_mag = arrays["abs_mag"].astype(float)
        self.abs_mag_extended = arrays["abs_mag_extended"].astype(float)
        self.young_abs_mag = arrays["young_abs_mag"].astype(float)
        self.young_live_fraction = arrays["young_live_fraction"].astype(float)
        self.young_duration_yr = float(arrays["young_duration_yr"])
        self.filter_wavelength = arrays["filter_wavelength"].astype(float)
        self.filter_response = arrays["filter_response"].astype(float)

    def at_redshift(self, redshift):
        """Tables at one redshift, in maggies at 10 pc per M_sun.

        Returns
        -------
        tables : dict
            ``"burst"`` and ``"extended"`` (nZ, na, 5) per living M_sun, and
            ``"young"`` (nZ, 5) per formed M_sun.
        """
        index = int(
            np.clip(
                np.searchsorted(self.redshift, redshift) - 1, 0, len(self.redshift) - 2
            )
        )
        weight = (redshift - self.redshift[index]) / (
            self.redshift[index + 1] - self.redshift[index]
        )
        out = {}
        for key, table in (
            ("burst", self.abs_mag),
            ("extended", self.abs_mag_extended),
            ("young", self.young_abs_mag),
        ):
            mags = (1 - weight) * table[index] + weight * table[index + 1]
            out[key] = 10 ** (-0.4 * mags)
        return out

    def old_light(self, old_table, log_age, log_z):
        """Maggies at 10 pc per living M_sun, bilinear in (log Z, log age).

        Parameters
        ----------
        old_table : `~numpy.ndarray`
            ``(nZ, na, 5)`` from `at_redshift`.
        log_age, log_z : `~numpy.ndarray`
            Same shape ``S``.

        Returns
        -------
        light : `~numpy.ndarray`
            Shape ``(5,) + S``.
        """
        iz, wz = _index_weight(self.log_metallicity, log_z)
        ia, wa = _index_weight(self.log_age, log_age)
        wz = wz[..., None]
        wa = wa[..., None]
        light = (
            (1 - wz) * (1 - wa) * old_table[iz, ia]
            + (1 - wz) * wa * old_table[iz, ia + 1]
            + wz * (1 - wa) * old_table[iz + 1, ia]
            + wz * wa * old_table[iz + 1, ia + 1]
        )
        return np.moveaxis(light, -1, 0)

    def young_light(self, young_table, log_z):
        """Maggies at 10 pc per M_sun formed in the young component, shape (5,)+S."""
        return np.stack(
            [
                np.interp(log_z, self.log_metallicity, young_table[:, band])
                for band in range(5)
            ]
        )

    def young_live(self, log_z):
        """Living fraction of the young component's formed mass."""
        return np.interp(log_z, self.log_metallicity, self.young_live_fraction)


def _index_weight(grid, values):
    values = np.clip(values, grid[0], grid[-1])
    index = np.clip(np.searchsorted(grid, values) - 1, 0, len(grid) - 2)
    weight = (values - grid[index]) / (grid[index + 1] - grid[index])
    return index, weight


@lru_cache(maxsize=1)
def load_sps_table():
    """Load the bundled SPS table (cached).

    Returns
    -------
    table : `SPSTable`
    """
    path = files("picasso_astro.training") / "data" / "sps_sdss_bc03.npz"
    with path.open("rb") as handle, np.load(handle, allow_pickle=False) as arrays:
        return SPSTable({key: arrays[key] for key in arrays.files})


def _tau_scale_at(rest_wavelength):
    """tau_lambda / tau_V at rest wavelengths (Angstrom), lambda^-0.7."""
    return (np.asarray(rest_wavelength, dtype=float) / 5500.0) ** -0.7


def _tau_scale(redshift):
    """tau_lambda / tau_V at each band's rest-frame wavelength, lambda^-0.7."""
    return (EFFECTIVE_WAVELENGTH / (1 + redshift) / 5500.0) ** -0.7


def birth_cloud_screen(redshift, tau_v):
    """Transmission per band of a birth-cloud screen of V-band depth ``tau_v``.

    Young stars (< 10^7-10^8 yr) first cross their birth clouds (Charlot & Fall
    2000, ApJ 539, 718), a foreground screen: ``exp(-tau_v (lambda/5500)^-0.7)``.

    Returns
    -------
    transmission : `~numpy.ndarray`
        Shape (5,).
    """
    return np.exp(-_tau_scale(redshift) * tau_v)


def diffuse_tau_v(sigma_gas, oh):
    """V-band optical depth of the gas column, ``A_V / 1.086`` (float32)."""
    from ._relations import SOLAR_OH

    tau_v = (AV_PER_GAS / 1.086) * sigma_gas * 10 ** (oh - SOLAR_OH)
    return np.asarray(tau_v, dtype=np.float32)


def dust_transmission(sigma_gas, oh, redshift):
    """Fraction of light escaping a dusty slab, per SDSS band.

    The V-band optical depth scales with the gas column and the metallicity
    (dust-to-gas ratio proportional to Z), ``tau_V = A_V / 1.086`` with
    `AV_PER_GAS`; the wavelength dependence is ``tau ~ lambda^-0.7`` (Charlot &
    Fall 2000, ApJ 539, 718), evaluated at each band's rest-frame wavelength.
    Stars and dust are mixed uniformly (slab: ``(1 - exp(-tau)) / tau``).

    Parameters
    ----------
    sigma_gas : `~numpy.ndarray`
        Projected HI + H2 surface density in M_sun kpc^-2.
    oh : `~numpy.ndarray`
        12 + log(O/H) of the gas.
    redshift : float

    Returns
    -------
    transmission : `~numpy.ndarray`
        Shape ``(5,) + sigma_gas.shape``, float32.
    """
    tau_v = diffuse_tau_v(sigma_gas, oh)
    scale = _tau_scale(redshift).astype(np.float32)
    tau = scale.reshape((5,) + (1,) * tau_v.ndim) * np.maximum(tau_v, np.float32(1e-6))
    return -np.expm1(-tau) / tau
