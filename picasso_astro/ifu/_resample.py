"""Resampling maps between grids so that surface-density totals are kept."""

import numpy as np

__all__ = ["linear", "logarithm", "resample_exact"]


def linear(prop, values):
    """Return a property's map as a quantity to average: linear for surface densities.

    Surface densities (log10 values) are averaged as linear quantities, so
    that totals are kept; metallicities and ages are averaged as they are.
    """
    return 10.0 ** np.asarray(values, float) if prop.surface_density else values


def logarithm(prop, values):
    """Undo `linear`: log10 of surface densities, NaN where not positive."""
    if not prop.surface_density:
        return values
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(values > 0, np.log10(values), np.nan)


def resample_exact(arrays, wcs_in, wcs_out, shape_out):
    """Resample arrays with `reproject.reproject_exact`; also return coverage.

    Each output pixel is the area-weighted mean of the finite input pixels
    it overlaps (NaN where it overlaps none); coverage is the fraction of it
    the input grid covers.
    """
    from reproject import reproject_exact

    def exact(array):
        return reproject_exact(
            (array, wcs_in.celestial), wcs_out.celestial, shape_out=shape_out
        )

    out, coverage = [], None
    for array in arrays:
        finite = np.isfinite(array)
        total, footprint = exact(np.where(finite, array, 0.0))
        if finite.all():
            weight = np.ones(shape_out)
        else:
            weight, _ = exact(finite.astype(float))
        with np.errstate(divide="ignore", invalid="ignore"):
            out.append(np.where(weight > 0, total / weight, np.nan))
        coverage = footprint if coverage is None else coverage
    return out, coverage
