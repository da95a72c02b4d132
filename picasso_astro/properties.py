"""The one table of physical properties that picasso_astro maps.

Every property is predicted as the log10 of a quantity, with the quantized
regression of Güler et al. (2017) over a fixed set of log10 bin edges.
"""

from dataclasses import dataclass

import astropy.units as u
import numpy as np

__all__ = [
    "DEFAULT_PROPERTIES",
    "PROPERTIES",
    "Z95",
    "Property",
    "get_property",
]

#: Half-width of a Gaussian's central 95 % interval, in sigma: a property's
#: 95 % interval when its model has not fitted one (``interval_95``).
Z95 = 1.959964


@dataclass(frozen=True)
class Property:
    """A physical property mapped pixel by pixel.

    Parameters
    ----------
    name : str
        Short identifier, e.g. ``"stellar_mass"``; used for FITS extension names.
    description : str
        One line for people.
    physical_unit : `~astropy.units.Unit`
        Unit of the linear quantity whose log10 is predicted (dimensionless for
        quantities that are logarithmic by definition, such as metallicities).
    bin_edges : tuple of float
        Default log10 bin edges of the quantized-regression head.
    log_label : str
        How the predicted value reads, e.g. ``"log10(Sigma_* / (M_sun kpc^-2))"``.
    surface_density : bool
        True when the property is per unit area, so that it sums to a total.
    logarithmic : bool
        True when the quantity is itself a log10 (metallicities): its maps are
        plain numbers rather than `~astropy.units.dex` of a unit.
    """

    name: str
    description: str
    physical_unit: u.UnitBase
    bin_edges: tuple
    log_label: str
    surface_density: bool = True
    logarithmic: bool = False

    @property
    def unit(self):
        """`~astropy.units.UnitBase`: unit of the maps (dex of the physical unit)."""
        if self.logarithmic:
            return u.dimensionless_unscaled
        return u.dex(self.physical_unit)

    @property
    def edges(self):
        """`~numpy.ndarray`: the bin edges as a float array."""
        return np.asarray(self.bin_edges, dtype=float)


def _edges(start, stop, step):
    return tuple(float(x) for x in np.arange(start, stop + step / 2, step))


_SURFACE_MASS = u.Msun / u.kpc**2

PROPERTIES = {
    p.name: p
    for p in (
        Property(
            "sfr",
            "Star-formation-rate surface density",
            u.Msun / u.yr / u.kpc**2,
            _edges(-7.0, 3.0, 1.0),
            "log10(Sigma_SFR / (M_sun yr^-1 kpc^-2))",
        ),
        Property(
            "hi",
            "Neutral-hydrogen (HI) surface density",
            _SURFACE_MASS,
            _edges(3.0, 9.0, 1.0),
            "log10(Sigma_HI / (M_sun kpc^-2))",
        ),
        Property(
            "gas_metallicity",
            "Gas-phase oxygen abundance 12 + log10(O/H)",
            u.dimensionless_unscaled,
            _edges(7.4, 9.4, 0.25),
            "12 + log10(O/H)",
            surface_density=False,
            logarithmic=True,
        ),
        Property(
            "stellar_metallicity",
            "Mass-weighted stellar metallicity log10(Z / Z_sun)",
            u.dimensionless_unscaled,
            _edges(-2.0, 0.75, 0.25),
            "log10(Z_* / Z_sun)",
            surface_density=False,
            logarithmic=True,
        ),
        Property(
            "stellar_mass",
            "Stellar-mass surface density",
            _SURFACE_MASS,
            _edges(3.0, 12.0, 1.0),
            "log10(Sigma_* / (M_sun kpc^-2))",
        ),
        Property(
            "gas_mass",
            "Total cold-gas surface density",
            _SURFACE_MASS,
            _edges(3.0, 11.0, 1.0),
            "log10(Sigma_gas / (M_sun kpc^-2))",
        ),
        Property(
            "stellar_age",
            "Mass-weighted stellar age",
            u.yr,
            _edges(8.0, 10.25, 0.25),
            "log10(age / yr)",
            surface_density=False,
        ),
    )
}

#: The five properties every model predicts; the others are optional.
DEFAULT_PROPERTIES = (
    "sfr",
    "hi",
    "gas_metallicity",
    "stellar_metallicity",
    "stellar_mass",
)


def get_property(name):
    """Return the `Property` called ``name``.

    Parameters
    ----------
    name : str
        One of the keys of `PROPERTIES`.

    Returns
    -------
    property : `Property`

    Raises
    ------
    KeyError
        If no property has that name; the message lists the known names.
    """
    try:
        return PROPERTIES[name]
    except KeyError:
        known = ", ".join(PROPERTIES)
        msg = f"unknown property {name!r}; known properties are: {known}"
        raise KeyError(msg) from None
