"""Predicted maps against IFU truth: one grid, one resolution, per-pixel statistics.

The predicted maps are put on the IFU's grid; the sharper side is first
smoothed to the coarser one's PSF with a Gaussian of FWHM
``sqrt(fwhm_coarse**2 - fwhm_sharp**2)``. Surface densities are smoothed and
resampled as linear quantities with `reproject.reproject_exact`, which
averages over the overlap of pixels, so that totals (value times pixel area)
are conserved; metallicities and ages are averaged as they are (log values).
"""

import warnings
from dataclasses import dataclass, field
from pathlib import Path

import astropy.units as u
import numpy as np
from astropy.convolution import Gaussian2DKernel, convolve
from astropy.stats import gaussian_fwhm_to_sigma, mad_std
from astropy.table import QTable
from astropy.wcs.utils import proj_plane_pixel_scales

from ..exceptions import AssumedPSFWarning, PicassoInputError
from ..images import TYPICAL_FWHM
from ..maps import PropertyMaps, _colorbar_label, _plot_title, _pyplot, property_map
from ..masks import DO_NOT_USE, MaskBit
from ..properties import get_property
from ._read import read_ifu
from ._resample import linear, logarithm, resample_exact

__all__ = ["Comparison", "compare"]

#: Least fraction of an IFU pixel the predicted map must cover to be compared.
MIN_COVERAGE = 0.99
#: Most of an IFU pixel's area that may come from masked predicted pixels.
MAX_MASKED_FRACTION = 0.5


@dataclass
class Comparison:
    """What `compare` returns.

    Attributes
    ----------
    table : `~astropy.table.QTable`
        One row per property: ``n_pixels``; ``bias`` (median of predicted
        minus IFU), ``mean``, ``scatter`` (standard deviation),
        ``robust_scatter`` (1.4826 MAD) and ``rms``, all in dex; the
        fractions of pixels where ``|predicted - IFU|`` is within the
        predicted 1-sigma uncertainty (``inside_predicted``) and within
        that and the IFU's in quadrature (``inside_combined``).
    predicted, ifu : `~picasso_astro.maps.PropertyMaps`
        Both sides on the IFU grid at the common resolution; a pixel is
        unmasked in both where it was compared.
    meta : dict
        PSF FWHMs, the smoothing applied, the IFU's calibrations.
    """

    table: QTable
    predicted: PropertyMaps
    ifu: PropertyMaps
    meta: dict = field(default_factory=dict)

    def plot(self, names=None):
        """Plot the maps side by side and predicted against IFU pixel values.

        One row per property: the predicted map, the IFU map (same colour
        scale) and a scatter plot with the 1:1 line. Needs matplotlib.

        Parameters
        ----------
        names : sequence of str, optional
            Properties to show, all compared ones by default.

        Returns
        -------
        figure : `~matplotlib.figure.Figure`
        """
        plt = _pyplot()
        names = list(self.table["property"]) if names is None else list(names)
        if not names:
            msg = "no property was compared, so there is nothing to plot"
            raise PicassoInputError(msg)
        figure = plt.figure(figsize=(12, 3.6 * len(names)), layout="constrained")
        wcs = self.ifu.wcs
        for row, name in enumerate(names):
            pred, truth = self.predicted[name], self.ifu[name]
            both = ~pred.mask & ~truth.mask
            prop = get_property(name)
            shown = [
                np.where(~pred.mask, pred.data, np.nan),
                np.where(~truth.mask, truth.data, np.nan),
            ]
            values = np.concatenate([s[np.isfinite(s)] for s in shown])
            limits = np.percentile(values, [1, 99]) if values.size else (0, 1)
            for col, (data, title) in enumerate(
                zip(
                    shown,
                    ("predicted", self.meta.get("ifu_source", "IFU")),
                    strict=True,
                )
            ):
                ax = figure.add_subplot(
                    len(names), 3, 3 * row + col + 1, projection=wcs
                )
                image = ax.imshow(
                    data, origin="lower", vmin=limits[0], vmax=limits[1], cmap="viridis"
                )
                ax.set_title(f"{_plot_title(prop)}: {title}", fontsize="medium")
                ax.coords[0].set_axislabel("RA")
                ax.coords[1].set_axislabel("Dec")
                figure.colorbar(image, ax=ax, label=_colorbar_label(prop), shrink=0.85)
            ax = figure.add_subplot(len(names), 3, 3 * row + 3)
            ax.errorbar(
                truth.data[both],
                pred.data[both],
                yerr=pred.uncertainty.array[both],
                fmt="o",
                ms=2,
                alpha=0.4,
                elinewidth=0.5,
            )
            ax.plot(limits, limits, "k-", lw=0.8, label="1:1")
            ax.set_xlim(limits)
            ax.set_ylim(limits)
            ax.set_xlabel("IFU")
            ax.set_ylabel("predicted")
            stats = self.table[list(self.table["property"]).index(name)]
            ax.set_title(
                f"bias {stats['bias'].value:+.2f}, scatter "
                f"{stats['scatter'].value:.2f} dex\n"
                f"{100 * stats['inside_predicted']:.0f}% within the predicted 1 sigma",
                fontsize="small",
            )
        return figure


def _pixel_arcsec(wcs):
    return float(np.mean(proj_plane_pixel_scales(wcs.celestial)) * 3600)


def _predicted_fwhm(maps):
    """Return the broadest band's PSF FWHM the predictions were made at, or None."""
    steps = maps.meta.get("preprocessing") or {}
    fwhms = [v for v in (steps.get("psf_fwhm_arcsec") or {}).values() if v]
    return max(fwhms) if fwhms else None


def _smooth(values, bad, sigma_arcsec, wcs):
    """Smooth ``values`` with a Gaussian, filling ``bad`` pixels from neighbours."""
    data = np.where(bad, np.nan, values).astype(float)
    if sigma_arcsec <= 0:
        return data
    sigma = sigma_arcsec / _pixel_arcsec(wcs)
    kernel = Gaussian2DKernel(sigma, x_size=2 * int(4 * sigma) + 1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "the kernel is not normalized", NaN runs
        return convolve(
            data, kernel, boundary="extend", nan_treatment="interpolate",
            preserve_nan=False,
        )  # fmt: skip


def _open(maps, reader, what):
    if isinstance(maps, PropertyMaps):
        return maps
    if isinstance(maps, (str, Path)):
        return reader(maps)
    msg = f"{what} must be PropertyMaps or a file name, not {type(maps).__name__}"
    raise TypeError(msg)


def compare(
    predicted,
    ifu,
    *,
    names=None,
    predicted_fwhm=None,
    ifu_fwhm=None,
    ifu_options=None,
):
    """Compare predicted maps with IFU maps on the IFU's grid and resolution.

    Parameters
    ----------
    predicted : `~picasso_astro.maps.PropertyMaps` or path
        Predictions (a file written by `~picasso_astro.maps.PropertyMaps.write`).
    ifu : `~picasso_astro.maps.PropertyMaps` or path
        IFU truth (`~picasso_astro.ifu.read_ifu` reads a file).
    names : sequence of str, optional
        Properties to compare; by default all that both sides hold.
    predicted_fwhm, ifu_fwhm : float, optional
        PSF FWHM in arcsec of each side; by default from their ``meta``
        (the broadest band's PSF of the predictions, ``psf_fwhm_arcsec`` of
        the IFU maps). Predictions that record none are taken at the typical
        SDSS seeing, with an `~picasso_astro.exceptions.AssumedPSFWarning`.
    ifu_options : dict, optional
        Options of `~picasso_astro.ifu.read_ifu` when ``ifu`` is a file.

    Returns
    -------
    comparison : `Comparison`

    Raises
    ------
    PicassoInputError
        If the maps share no property, have no celestial WCS, do not
        overlap, or the IFU's PSF is unknown.
    """
    predicted = _open(predicted, PropertyMaps.read, "predicted")
    ifu = _open(ifu, lambda path: read_ifu(path, **(ifu_options or {})), "ifu")
    for side, maps in (("predicted", predicted), ("IFU", ifu)):
        if maps.wcs is None or not maps.wcs.has_celestial:
            msg = f"the {side} maps have no celestial WCS, so they cannot be aligned"
            raise PicassoInputError(msg)
    common = [name for name in predicted.names if name in ifu.names]
    if names is not None:
        missing = [n for n in names if n not in predicted.names or n not in ifu.names]
        if missing:
            msg = (
                f"cannot compare {', '.join(missing)}: the predictions hold "
                f"{', '.join(predicted.names)} and the IFU maps "
                f"{', '.join(ifu.names)}"
            )
            raise PicassoInputError(msg)
        common = list(names)
    if not common:
        msg = (
            f"the predictions ({', '.join(predicted.names)}) and the IFU maps "
            f"({', '.join(ifu.names)}) share no property"
        )
        raise PicassoInputError(msg)

    if predicted_fwhm is None:
        predicted_fwhm = _predicted_fwhm(predicted)
        if predicted_fwhm is None:
            predicted_fwhm = TYPICAL_FWHM
            warnings.warn(
                "the predicted maps record no PSF; the typical SDSS seeing of "
                f"{TYPICAL_FWHM} arcsec is assumed (give predicted_fwhm=)",
                AssumedPSFWarning,
                stacklevel=2,
            )
    if ifu_fwhm is None:
        ifu_fwhm = ifu.meta.get("psf_fwhm_arcsec")
        if ifu_fwhm is None:
            msg = "the IFU maps record no PSF FWHM (psf_fwhm_arcsec); give ifu_fwhm="
            raise PicassoInputError(msg)
    kernel = np.sqrt(abs(ifu_fwhm**2 - predicted_fwhm**2)) * gaussian_fwhm_to_sigma
    smooth_predicted = predicted_fwhm < ifu_fwhm
    sigma_pred = kernel if smooth_predicted else 0.0
    sigma_ifu = 0.0 if smooth_predicted else kernel

    # Pixels not of the scene (off the image, stars, neighbours, bad) are
    # filled from their neighbours; the sky keeps the network's values.
    not_scene = (predicted.bitmask & int(DO_NOT_USE & ~MaskBit.SKY)) != 0
    pred_maps, ifu_maps, rows = {}, {}, []
    for name in common:
        prop = get_property(name)
        nd = predicted[name]
        value = _smooth(linear(prop, nd.data), not_scene, sigma_pred, predicted.wcs)
        error = _smooth(nd.uncertainty.array, not_scene, sigma_pred, predicted.wcs)
        masked = np.asarray(nd.mask, float)
        (value, error, masked), coverage = resample_exact(
            (value, error, masked), predicted.wcs, ifu.wcs, ifu.shape
        )
        pred_value = logarithm(prop, value)
        pred_bad = (
            (coverage < MIN_COVERAGE)
            | (masked > MAX_MASKED_FRACTION)
            | ~np.isfinite(pred_value)
        )

        truth = ifu[name]
        truth_value = truth.data.astype(float)
        truth_error = truth.uncertainty.array.astype(float)
        truth_bad = np.asarray(truth.mask, bool) | ~np.isfinite(truth_value)
        if sigma_ifu > 0:
            truth_value = logarithm(
                prop, _smooth(linear(prop, truth_value), truth_bad, sigma_ifu, ifu.wcs)
            )
            truth_error = _smooth(truth_error, truth_bad, sigma_ifu, ifu.wcs)
        both = ~pred_bad & ~truth_bad
        pred_maps[name] = property_map(
            name, np.where(both, pred_value, np.nan), error, ~both, ifu.wcs
        )
        ifu_maps[name] = property_map(
            name, np.where(both, truth_value, np.nan), truth_error, ~both, ifu.wcs
        )
        rows.append(
            _statistics(name, pred_value, error, truth_value, truth_error, both)
        )

    if not np.any(coverage > 0):
        centre = ifu.wcs.celestial.pixel_to_world(
            (ifu.shape[1] - 1) / 2, (ifu.shape[0] - 1) / 2
        )
        msg = (
            "the predicted maps do not overlap the IFU's field (centred at RA "
            f"{centre.ra.deg:.5f}, Dec {centre.dec.deg:.5f}); give maps of the same "
            "galaxy"
        )
        raise PicassoInputError(msg)
    table = QTable(rows=rows, names=list(rows[0]))
    for key in ("bias", "mean", "scatter", "robust_scatter", "rms"):
        table[key] = np.asarray(table[key], float) * u.dex
    meta = {
        "galaxy": ifu.meta.get("galaxy"),
        "ifu_source": ifu.meta.get("source", "IFU"),
        "predicted_fwhm_arcsec": float(predicted_fwhm),
        "ifu_fwhm_arcsec": float(ifu_fwhm),
        "smoothed": "predicted" if smooth_predicted and kernel > 0 else (
            "ifu" if kernel > 0 else "neither"
        ),
        "kernel_fwhm_arcsec": float(kernel / gaussian_fwhm_to_sigma),
        "calibrations": dict(ifu.meta.get("calibrations", {})),
        "model": predicted.meta.get("model"),
    }  # fmt: skip
    table.meta.update(
        {"comments": [f"{k}: {v}" for k, v in meta.items() if k != "calibrations"]}
    )
    bitmask = np.where(
        np.isfinite(coverage) & (coverage > 0), 0, int(MaskBit.OFF_IMAGE)
    )
    return Comparison(
        table=table,
        predicted=PropertyMaps(pred_maps, meta=dict(predicted.meta), bitmask=bitmask),
        ifu=PropertyMaps(ifu_maps, meta=dict(ifu.meta), bitmask=ifu.bitmask),
        meta=meta,
    )


def _statistics(name, pred, pred_err, truth, truth_err, both):
    diff = (pred - truth)[both]
    n = int(diff.size)
    row = {"property": name, "n_pixels": n}
    if n == 0:
        return row | dict.fromkeys(
            ("bias", "mean", "scatter", "robust_scatter", "rms", "inside_predicted",
             "inside_combined"),
            np.nan,
        )  # fmt: skip
    sigma = pred_err[both]
    combined = np.hypot(sigma, np.nan_to_num(truth_err[both]))
    return row | {
        "bias": float(np.median(diff)),
        "mean": float(np.mean(diff)),
        "scatter": float(np.std(diff, ddof=1)) if n > 1 else np.nan,
        "robust_scatter": float(mad_std(diff)),
        "rms": float(np.sqrt(np.mean(diff**2))),
        "inside_predicted": float(np.mean(np.abs(diff) <= sigma)),
        "inside_combined": float(np.mean(np.abs(diff) <= combined)),
    }
