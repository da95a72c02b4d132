"""What the IFU readers share: building the maps, the physical pixel area."""

import astropy.units as u
import numpy as np
from astropy.wcs.utils import proj_plane_pixel_area

from ..exceptions import PicassoInputError
from ..maps import PropertyMaps, property_map
from ..masks import MaskBit

__all__ = ["build_maps", "pixel_area_kpc2", "resolve_cosmology"]


def resolve_cosmology(cosmology):
    """Return ``cosmology``, or astropy's default one (Planck18 unless changed)."""
    if cosmology is not None:
        return cosmology
    from astropy.cosmology import default_cosmology

    return default_cosmology.get()


def pixel_area_kpc2(wcs, redshift, cosmology):
    """Physical area of one pixel of ``wcs`` at ``redshift``, in kpc^2."""
    if not np.isfinite(redshift) or not redshift > 0:
        msg = (
            f"the redshift must be a positive number, not {redshift!r}; give "
            "redshift= or a target table (drpall=) that holds the galaxy"
        )
        raise PicassoInputError(msg)
    scale = cosmology.kpc_proper_per_arcmin(redshift).to(u.kpc / u.arcsec)
    side = np.sqrt(proj_plane_pixel_area(wcs) * u.deg**2).to(u.arcsec)
    return float(((side * scale) ** 2).to_value(u.kpc**2))


def build_maps(values, errors, valid, *, wcs, covered, meta, calibrations):
    """Return IFU truth as `~picasso_astro.maps.PropertyMaps`.

    Parameters
    ----------
    values, errors : dict of str to 2D `~numpy.ndarray`
        Per property: log10 values in the package's units and 1-sigma errors
        (dex); NaN where undefined.
    valid : dict of str to 2D bool `~numpy.ndarray`
        Per property: where the value can be used.
    wcs : `~astropy.wcs.WCS`
        Celestial WCS of the IFU grid.
    covered : 2D bool `~numpy.ndarray`
        Where the IFU has data; elsewhere the bit mask says ``OFF_IMAGE``.
    meta : dict
        Provenance of the whole product.
    calibrations : dict of str to str
        Per property: how it was derived (stored in each map's ``meta``).
    """
    maps = {}
    for name, value in values.items():
        good = valid[name] & np.isfinite(value)
        maps[name] = property_map(
            name,
            np.where(good, value, np.nan),
            np.where(good, errors[name], np.nan),
            ~good,
            wcs,
            calibration=calibrations[name],
        )
    bitmask = np.where(covered, 0, int(MaskBit.OFF_IMAGE))
    # "model" names what made the maps, as for predictions (plot titles, FITS).
    meta = dict(meta, calibrations=dict(calibrations))
    meta.setdefault("model", f"IFU: {meta.get('source', 'unknown')}")
    return PropertyMaps(maps, meta=meta, bitmask=bitmask)
