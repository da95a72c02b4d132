"""`PropertyMaps`: one `~astropy.nddata.NDData` per property, and its FITS file."""

import json
from itertools import pairwise
from pathlib import Path

import astropy.units as u
import numpy as np
from astropy.coordinates import SkyCoord
from astropy.io import fits
from astropy.nddata import NDData, StdDevUncertainty
from astropy.table import QTable
from astropy.wcs import WCS
from astropy.wcs.utils import proj_plane_pixel_area

from ._atomic import atomic_path, write_failure
from .exceptions import PicassoInputError
from .masks import DO_NOT_USE, MaskBit, as_bitmask, bits_from_names, describe_bits
from .properties import Z95, get_property

__all__ = ["PropertyMaps", "property_map"]

_MASK_EXTNAME = "MASK"
_ERR_SUFFIX = "_ERR"
#: Width of the default annuli of `PropertyMaps.radial_profile`, in pixels.
_DEFAULT_ANNULUS_PIX = 2.0
# Scale of the standard error of a median relative to that of a mean (Gaussian).
_MEDIAN_ERROR_FACTOR = 1.2533


def _kpc_per_arcsec(redshift, distance, cosmology):
    """Physical scale at the galaxy from a redshift or a distance."""
    if (redshift is None) == (distance is None):
        msg = (
            "a physical scale needs exactly one of redshift= (with cosmology=, "
            "Planck18 by default) or distance= (a length, e.g. 20 * u.Mpc)"
        )
        raise PicassoInputError(msg)
    if distance is not None:
        try:
            d_a = u.Quantity(distance).to(u.kpc)
        except (TypeError, u.UnitsError):
            msg = f"distance must be a length such as 20 * u.Mpc, not {distance!r}"
            raise PicassoInputError(msg) from None
    else:
        if not np.isscalar(redshift) or not float(redshift) > 0:
            msg = f"redshift must be a positive number, not {redshift!r}"
            raise PicassoInputError(msg)
        if cosmology is None:
            from astropy.cosmology import default_cosmology

            cosmology = default_cosmology.get()
        d_a = cosmology.angular_diameter_distance(float(redshift)).to(u.kpc)
    if not d_a.isscalar or not d_a.value > 0:
        msg = f"the distance must be one positive length, not {d_a}"
        raise PicassoInputError(msg)
    return d_a * (1 * u.arcsec).to_value(u.rad) / u.arcsec


# Short panel titles and symbols of the plots (mathtext).
_PLOT_LABELS = {
    "sfr": ("Star formation", r"$\Sigma_{\rm SFR}$"),
    "hi": ("Neutral hydrogen", r"$\Sigma_{\rm HI}$"),
    "gas_metallicity": ("Gas metallicity", None),
    "stellar_metallicity": ("Stellar metallicity", None),
    "stellar_mass": ("Stellar mass", r"$\Sigma_\star$"),
    "gas_mass": ("Cold gas", r"$\Sigma_{\rm gas}$"),
    "stellar_age": ("Stellar age", "age"),
}


def _plot_title(prop):
    return _PLOT_LABELS.get(prop.name, (prop.description, None))[0]


def _colorbar_label(prop):
    """Colour-bar label of a property's map in physical units."""
    if prop.name == "gas_metallicity":
        return "12 + log$_{10}$(O/H)"
    if prop.name == "stellar_metallicity":
        return r"log$_{10}$($Z_\star / Z_\odot$)"
    if prop.logarithmic:
        return prop.log_label
    symbol = _PLOT_LABELS.get(prop.name, (None, prop.name))[1] or prop.name
    unit = prop.physical_unit.to_string("latex_inline")
    return f"log$_{{10}}$ {symbol} [{unit}]"


def property_map(name, value, sigma, mask, wcs, **meta):
    """One property's map as `~astropy.nddata.NDData`, in the property's unit.

    Parameters
    ----------
    name : str
        A property of `~picasso_astro.properties.PROPERTIES`.
    value, sigma : 2D `~numpy.ndarray`
        log10 values and their 1-sigma uncertainties (dex).
    mask : 2D bool `~numpy.ndarray`
        True where the value is not to be used.
    wcs : `~astropy.wcs.WCS` or None
    **meta
        More entries of the map's ``meta`` (e.g. ``calibration``).

    Returns
    -------
    map : `~astropy.nddata.NDData`
    """
    prop = get_property(name)
    return NDData(
        np.asarray(value, dtype=np.float32),
        uncertainty=StdDevUncertainty(np.asarray(sigma, dtype=np.float32)),
        mask=mask,
        wcs=wcs,
        unit=prop.unit,
        meta={
            "property": name,
            "description": prop.description,
            "quantity": prop.log_label,
            **meta,
        },
    )


class PropertyMaps:
    """Maps of physical properties of one galaxy, on the input's pixel grid.

    Each map is an `~astropy.nddata.NDData` holding the log10 of the property
    (unit ``dex(...)``; plain numbers for metallicities), a
    `~astropy.nddata.StdDevUncertainty` from the model's bin distribution, a mask
    (True where the pixel is not the target galaxy: off the image, sky outside
    its footprint, a neighbour, a star or a bad pixel), the WCS, and provenance
    in ``meta``. Why each pixel is flagged is in `bitmask`
    (`~picasso_astro.masks.MaskBit`).

    Parameters
    ----------
    maps : dict of str to `~astropy.nddata.NDData`
        Property name to its map.
    meta : dict, optional
        Provenance shared by all maps: galaxy name, model name and revision,
        package version, input files, preprocessing steps.
    bitmask : 2D int `~numpy.ndarray`, optional
        `~picasso_astro.masks.MaskBit` flags per pixel; by default derived from
        the first map's mask (every masked pixel a bad pixel).
    """

    def __init__(self, maps, *, meta=None, bitmask=None):
        if not maps:
            msg = "PropertyMaps needs at least one map"
            raise ValueError(msg)
        self._maps = dict(maps)
        self.meta = dict(meta or {})
        if bitmask is None:
            first = next(iter(self._maps.values()))
            shape = first.data.shape
            masked = np.zeros(shape, bool) if first.mask is None else first.mask
            bitmask = np.where(masked, int(MaskBit.BAD_PIXEL), 0)
        self.bitmask = as_bitmask(bitmask)

    @classmethod
    def from_arrays(
        cls, values, sigmas, mask=None, *, names, wcs=None, meta=None, bitmask=None
    ):
        """Build maps from stacked model outputs.

        Parameters
        ----------
        values, sigmas : 3D `~numpy.ndarray`
            Shape ``(n_properties, ny, nx)``: log10 values and 1-sigma uncertainties.
        mask : 2D bool `~numpy.ndarray`, optional
            True on pixels to flag in every map (as bad pixels when no
            ``bitmask`` is given).
        names : sequence of str
            Property names, in the order of the first axis.
        wcs : `~astropy.wcs.WCS`, optional
        meta : dict, optional
        bitmask : 2D int `~numpy.ndarray`, optional
            `~picasso_astro.masks.MaskBit` flags; the maps' mask is True where a
            `~picasso_astro.masks.DO_NOT_USE` bit is set (or ``mask`` is True).
        """
        shape = np.shape(values)[1:]
        if bitmask is None:
            masked = np.zeros(shape, bool) if mask is None else np.asarray(mask, bool)
            bitmask = np.where(masked, int(MaskBit.BAD_PIXEL), 0)
        bitmask = as_bitmask(bitmask)
        maps = {}
        mask = (
            (bitmask & int(DO_NOT_USE)) != 0
            if mask is None
            else (np.asarray(mask, bool) | ((bitmask & int(DO_NOT_USE)) != 0))
        )
        for name, value, sigma in zip(names, values, sigmas, strict=True):
            maps[name] = property_map(name, value, sigma, mask.copy(), wcs)
        return cls(maps, meta=meta, bitmask=bitmask)

    @property
    def names(self):
        """Tuple of str: the properties mapped, in order."""
        return tuple(self._maps)

    @property
    def wcs(self):
        """`~astropy.wcs.WCS` or None: the grid shared by all maps."""
        return next(iter(self._maps.values())).wcs

    @property
    def shape(self):
        """Tuple of int: ``(ny, nx)`` of every map."""
        return next(iter(self._maps.values())).data.shape

    def __getitem__(self, name):
        try:
            return self._maps[name]
        except KeyError:
            msg = f"no map of {name!r}; this object has {', '.join(self.names)}"
            raise KeyError(msg) from None

    def __iter__(self):
        return iter(self._maps)

    def __len__(self):
        return len(self._maps)

    def __contains__(self, name):
        return name in self._maps

    def items(self):
        """Return ``(name, NDData)`` pairs."""
        return self._maps.items()

    def flagged(self, *reasons):
        """Return where any of the given reasons flags a pixel.

        Parameters
        ----------
        *reasons : str or `~picasso_astro.masks.MaskBit`
            ``"off_image"``, ``"sky"``, ``"neighbour"``, ``"star"``,
            ``"bad_pixel"``, ``"low_sn"``, ``"out_of_range"``; all of them if
            none is given.

        Returns
        -------
        flagged : 2D bool `~numpy.ndarray`
        """
        try:
            bits = bits_from_names(*reasons) if reasons else ~MaskBit(0)
        except ValueError as exc:
            raise PicassoInputError(str(exc)) from None
        return (self.bitmask & int(bits)) != 0

    @property
    def footprint(self):
        """2D bool `~numpy.ndarray`: the target's own pixels.

        Pixels with no `~picasso_astro.masks.DO_NOT_USE` flag; totals and
        radial profiles use them by default.
        """
        return ~self.footprint_mask()

    def footprint_mask(self):
        """Return the boolean mask of the `~picasso_astro.masks.DO_NOT_USE` bits."""
        return (self.bitmask & int(DO_NOT_USE)) != 0

    def interval(self, name, level=0.68):
        """Return the lower and upper ends of each pixel's interval.

        Parameters
        ----------
        name : str
            A property in `names`.
        level : {0.68, 0.95}
            The interval's probability: ``value +- sigma``, or ``value +- k
            sigma`` with ``k`` fitted on held-out mocks along with the
            uncertainties (``meta["interval_95"]``; 1.96, the Gaussian's,
            for a model that did not fit one).

        Returns
        -------
        lower, upper : `~astropy.units.Quantity`
            Arrays in the map's unit (log10), masked pixels included.
        """
        nd = self[name]
        if level == 0.68:
            half = 1.0
        elif level == 0.95:
            half = self._interval_95(name)
        else:
            msg = (
                f"level must be 0.68 or 0.95, the intervals the model's "
                f"uncertainties are calibrated for, not {level!r}"
            )
            raise PicassoInputError(msg)
        sigma = half * nd.uncertainty.array
        return (nd.data - sigma) * nd.unit, (nd.data + sigma) * nd.unit

    def _interval_95(self, name):
        return float(self.meta.get("interval_95", {}).get(name, Z95))

    # -- geometry -----------------------------------------------------------

    def _pixel_scale(self):
        """Arcsec per pixel (square root of the pixel's solid angle)."""
        wcs = self.wcs
        if wcs is None or not wcs.has_celestial:
            msg = (
                "these maps have no celestial WCS, so their pixels have no size on "
                "the sky; predict from images with a WCS"
            )
            raise PicassoInputError(msg)
        area = proj_plane_pixel_area(wcs.celestial) * u.deg**2
        return np.sqrt(area).to(u.arcsec)

    def _center_pixel(self, center):
        """``(x, y)`` pixel of ``center``: None, a SkyCoord or a pixel pair."""
        ny, nx = self.shape
        if center is None:
            return (nx - 1) / 2, (ny - 1) / 2
        if isinstance(center, SkyCoord):
            if self.wcs is None:
                msg = "a SkyCoord center needs maps with a WCS; give (x, y) pixels"
                raise PicassoInputError(msg)
            x, y = self.wcs.celestial.world_to_pixel(center)
            return float(x), float(y)
        try:
            x, y = center
            return float(x), float(y)
        except (TypeError, ValueError):
            msg = (
                f"center must be a SkyCoord or an (x, y) pixel position, not {center!r}"
            )
            raise PicassoInputError(msg) from None

    def _radius_arcsec(self, center):
        ny, nx = self.shape
        x0, y0 = self._center_pixel(center)
        yy, xx = np.mgrid[0:ny, 0:nx]
        return np.hypot(xx - x0, yy - y0) * self._pixel_scale().to_value(u.arcsec)

    def _good(self, name, footprint=True):
        """Pixels to use: unmasked, or with ``footprint=False`` also the sky."""
        nd = self[name]
        good = np.isfinite(nd.data)
        if nd.mask is None:
            return good
        masked = np.asarray(nd.mask, dtype=bool)
        if not footprint:
            only_sky = (self.bitmask & int(DO_NOT_USE)) == int(MaskBit.SKY)
            masked = masked & ~only_sky
        return good & ~masked

    # -- totals and profiles ------------------------------------------------

    def total(
        self,
        name,
        *,
        redshift=None,
        distance=None,
        cosmology=None,
        aperture=None,
        center=None,
        footprint=True,
        estimate="median",
    ):
        """Sum a surface-density map to a total (e.g. stellar mass, SFR).

        Each pixel of the target's footprint contributes ``10**value`` times
        its physical area, which follows from the WCS pixel size and the
        galaxy's distance.

        Masked pixels (sky outside the footprint, stars, neighbours, bad or
        off-image pixels) and non-finite values are left out, so the total
        of a galaxy partly covered by a star is a lower limit.

        Parameters
        ----------
        name : str
            A surface-density property: ``"stellar_mass"``, ``"sfr"``,
            ``"hi"`` or ``"gas_mass"``.
        redshift : float, optional
            The galaxy's redshift; the angular-diameter distance comes from
            ``cosmology``. Give this or ``distance``.
        distance : `~astropy.units.Quantity`, optional
            The galaxy's angular-diameter distance (for nearby galaxies, its
            distance), e.g. ``20 * u.Mpc``.
        cosmology : `~astropy.cosmology.Cosmology`, optional
            Used with ``redshift``; by default astropy's default cosmology
            (`~astropy.cosmology.Planck18` unless changed).
        aperture : `~astropy.units.Quantity` or 2D bool `~numpy.ndarray`, optional
            Sum only within a circle of this radius about ``center``, given
            as an angle (e.g. ``10 * u.arcsec``) or a physical length (e.g.
            ``5 * u.kpc``), or only over the pixels where this array is True;
            within the footprint unless ``footprint=False``.
        center : `~astropy.coordinates.SkyCoord` or (x, y), optional
            Centre of a circular aperture; the centre of the map by default.
        footprint : bool
            Sum over the target's footprint (the default). False adds the sky
            pixels (still without stars, neighbours and bad pixels): what the
            network paints on the sky is not the galaxy, so use it only to see
            how much that is.
        estimate : {"median", "mean"}
            ``"median"`` (the default) sums ``10**value``. ``"mean"`` sums
            each pixel's expected linear value if its log value were Gaussian
            with the map's uncertainty, ``10**(value + ln(10) sigma**2 / 2)``.
            On held-out mocks the median sum is the less biased for the
            bundled model (stellar mass -0.11 dex against -0.08, SFR -0.14
            against +0.61): where the uncertainty is large, the Gaussian tail
            dominates the mean.  The network's own bin mixture gives a mean
            too, the sum over bins of each bin's probability times ``10**``
            its value; it is more biased still (0.5.0 on 300 held-out
            192-pixel mocks: stellar mass +0.14 dex, SFR +1.9, against -0.05
            and +0.01 for the median sum), so it is not offered.

        Returns
        -------
        total : `~astropy.units.Quantity`
            In ``solMass`` (masses) or ``solMass / yr`` (star-formation rate).

        Raises
        ------
        PicassoInputError
            If the property is not a surface density, the maps have no WCS,
            or neither (or both) of ``redshift`` and ``distance`` is given.

        Notes
        -----
        The maps are intrinsic surface densities (per square kpc at the
        galaxy), so no cosmological dimming correction is applied here. The
        per-pixel uncertainties are correlated (neighbouring pixels share the
        network's receptive field and the PSF), so no uncertainty of the total
        is returned; the model's integrated scatter is in its model card.
        """
        nd = self[name]
        prop = get_property(name)
        if not prop.surface_density or prop.logarithmic:
            msg = (
                f"{name!r} is not a surface density and has no total; totals "
                "exist for stellar_mass, sfr, hi and gas_mass"
            )
            raise PicassoInputError(msg)
        scale = _kpc_per_arcsec(redshift, distance, cosmology)
        pixel_kpc = (self._pixel_scale() * scale).to(u.kpc)
        use = self._good(name, footprint)
        if aperture is not None:
            use &= self._aperture_mask(aperture, center, scale)
        if estimate not in ("mean", "median"):
            msg = f"estimate must be 'mean' or 'median', not {estimate!r}"
            raise PicassoInputError(msg)
        log_value = nd.data[use].astype(np.float64)
        if estimate == "mean" and nd.uncertainty is not None:
            sigma = nd.uncertainty.array[use].astype(np.float64)
            log_value = log_value + np.log(10.0) / 2 * np.nan_to_num(sigma) ** 2
        total = np.power(10.0, log_value).sum() * prop.physical_unit * pixel_kpc**2
        return total.to(prop.physical_unit * u.kpc**2)

    def _aperture_mask(self, aperture, center, scale):
        if isinstance(aperture, u.Quantity):
            if aperture.unit.physical_type == "length":
                radius = (aperture / scale).to(u.arcsec)
            elif aperture.unit.physical_type == "angle":
                radius = aperture.to(u.arcsec)
            else:
                msg = (
                    "aperture must be a radius as an angle or a length, "
                    f"not {aperture!r}"
                )
                raise PicassoInputError(msg)
            return self._radius_arcsec(center) <= radius.value
        aperture = np.asarray(aperture)
        if aperture.dtype != bool or aperture.shape != self.shape:
            msg = (
                "aperture must be a radius (angle or length) or a boolean array "
                f"of shape {self.shape}"
            )
            raise PicassoInputError(msg)
        return aperture

    def radial_profile(
        self,
        name,
        *,
        center=None,
        bins=None,
        statistic="median",
        redshift=None,
        distance=None,
        cosmology=None,
        footprint=True,
    ):
        """Azimuthal profile of a map in circular annuli.

        Parameters
        ----------
        name : str
            The property.
        center : `~astropy.coordinates.SkyCoord` or (x, y), optional
            Centre of the annuli; the centre of the map (where the target
            galaxy sits) by default.
        bins : int or `~astropy.units.Quantity`, optional
            Number of annuli out to the largest circle inside the map, or
            their edges as angles (e.g. ``np.arange(0, 31, 3) * u.arcsec``).
            By default annuli two pixels wide out to that circle.
        statistic : {"median", "mean"}
            Statistic of the log10 values of the unmasked pixels in each
            annulus (the mean of log10 values is the log of the geometric
            mean).
        redshift, distance, cosmology : optional
            As in `total`; when given, a ``radius_kpc`` column is added.
        footprint : bool
            Use the target's footprint, and stop at its outermost pixel (the
            default); False adds the sky pixels and goes on to the largest
            circle inside the map.

        Returns
        -------
        profile : `~astropy.table.QTable`
            One row per annulus: ``radius`` (mean radius of its pixels),
            ``r_in``, ``r_out`` (arcsec), ``value`` (the statistic, in the
            unit of the map), ``error`` (standard error of the statistic from
            the scatter), ``scatter`` (standard deviation of the pixels),
            ``uncertainty`` (median per-pixel model uncertainty) and
            ``n_pixels``; empty annuli hold NaN.
        """
        if statistic not in ("median", "mean"):
            msg = f"statistic must be 'median' or 'mean', not {statistic!r}"
            raise PicassoInputError(msg)
        nd = self[name]
        radius = self._radius_arcsec(center)
        good = self._good(name, footprint)
        reach = None
        if footprint and bins is None:
            reach = float(radius[good].max()) if good.any() else 0.0
        edges = self._annulus_edges(bins, center, reach)
        data = nd.data.astype(np.float64)
        sigma = nd.uncertainty.array.astype(np.float64)
        rows = []
        for r_in, r_out in pairwise(edges):
            use = good & (radius >= r_in) & (radius < r_out)
            n = int(use.sum())
            if n == 0:
                mid = 0.5 * (r_in + r_out)
                rows.append((mid, r_in, r_out, *[np.nan] * 4, 0))
                continue
            values = data[use]
            scatter = float(np.std(values))
            if statistic == "median":
                value = float(np.median(values))
                error = _MEDIAN_ERROR_FACTOR * scatter / np.sqrt(n)
            else:
                value = float(np.mean(values))
                error = scatter / np.sqrt(n)
            rows.append(
                (
                    float(radius[use].mean()),
                    r_in,
                    r_out,
                    value,
                    error,
                    scatter,
                    float(np.median(sigma[use])),
                    n,
                )
            )
        columns = list(zip(*rows, strict=True))
        table = QTable(meta={"property": name, "statistic": statistic})
        for key, column in zip(("radius", "r_in", "r_out"), columns[:3], strict=True):
            table[key] = np.asarray(column) * u.arcsec
        for key, column in zip(
            ("value", "error", "scatter", "uncertainty"), columns[3:7], strict=True
        ):
            table[key] = np.asarray(column) * nd.unit
        table["n_pixels"] = np.asarray(columns[7], dtype=int)
        if redshift is not None or distance is not None:
            scale = _kpc_per_arcsec(redshift, distance, cosmology)
            table["radius_kpc"] = (table["radius"] * scale).to(u.kpc)
        return table

    def _annulus_edges(self, bins, center, reach=None):
        ny, nx = self.shape
        pixel = self._pixel_scale().to_value(u.arcsec)
        x0, y0 = self._center_pixel(center)
        r_max = max(min(x0, y0, nx - 1 - x0, ny - 1 - y0), 1.0) * pixel
        if reach is not None:
            # No further than the footprint's outermost pixel.
            r_max = min(r_max, max(reach + pixel / 2, pixel))
        if bins is None:
            step = _DEFAULT_ANNULUS_PIX * pixel
            return np.arange(max(int(r_max // step), 1) + 1) * step
        if isinstance(bins, u.Quantity):
            try:
                edges = np.atleast_1d(bins.to_value(u.arcsec)).astype(float)
            except u.UnitsError:
                msg = f"bins must be angles such as arcsec, not {bins.unit}"
                raise PicassoInputError(msg) from None
            if edges.size < 2 or np.any(np.diff(edges) <= 0) or edges[0] < 0:
                msg = "bins must be at least two increasing, non-negative radii"
                raise PicassoInputError(msg)
            return edges
        if isinstance(bins, (int, np.integer)) and not isinstance(bins, bool):
            if bins < 1:
                msg = f"bins must be a positive number of annuli, not {bins}"
                raise PicassoInputError(msg)
            return np.linspace(0.0, r_max, int(bins) + 1)
        msg = f"bins must be a number of annuli or radii in arcsec, not {bins!r}"
        raise PicassoInputError(msg)

    # -- plots --------------------------------------------------------------

    def plot(self, names=None, *, uncertainty=False, cmap="viridis", ncols=None):
        """Quicklook of the maps: one panel per property on WCS axes.

        Colour bars are labelled in physical units (log10); stars, neighbours
        and bad pixels are left blank, the sky is shown, and a white contour
        marks the target's footprint. Needs matplotlib (the ``[plot]`` extra).

        Parameters
        ----------
        names : sequence of str, optional
            Properties to show, all by default.
        uncertainty : bool
            Add a second row with each map's 1-sigma uncertainty (dex).
        cmap : str
            Matplotlib colour map of the maps.
        ncols : int, optional
            Panels per row; three by default. With ``uncertainty`` the
            uncertainty panels follow in rows of their own below the maps.

        Returns
        -------
        figure : `~matplotlib.figure.Figure`
        """
        plt = _pyplot()

        names = self._plot_names(names)
        n = len(names)
        if ncols is None:
            ncols = min(n, 3)
        nrows_maps = -(-n // ncols)
        nrows = 2 * nrows_maps if uncertainty else nrows_maps
        figure = plt.figure(figsize=(4.2 * ncols, 3.6 * nrows), layout="constrained")
        wcs = self.wcs.celestial if self.wcs is not None else None
        for k, name in enumerate(names):
            nd = self[name]
            prop = get_property(name)
            good = self._good(name, footprint=False)
            panels = [(nd.data, _colorbar_label(prop), cmap, 0)]
            if uncertainty:
                panels.append(
                    (nd.uncertainty.array, "1-sigma uncertainty [dex]", "magma", 1)
                )
            for data, label, colours, extra_row in panels:
                row = (k // ncols) + extra_row * nrows_maps
                index = row * ncols + (k % ncols) + 1
                ax = figure.add_subplot(nrows, ncols, index, projection=wcs)
                shown = np.ma.masked_array(data, mask=~good)
                cm = plt.get_cmap(colours).with_extremes(bad=(0, 0, 0, 0))
                limits = (
                    np.percentile(shown.compressed(), [1, 99])
                    if shown.count()
                    else (None, None)
                )
                image = ax.imshow(
                    shown, origin="lower", cmap=cm, vmin=limits[0], vmax=limits[1]
                )
                figure.colorbar(image, ax=ax, label=label, shrink=0.9)
                if self.footprint.any() and not self.footprint.all():
                    ax.contour(
                        self.footprint, levels=[0.5], colors="white", linewidths=0.8
                    )
                title = _plot_title(prop)
                ax.set_title(title if extra_row == 0 else f"{title}: uncertainty")
                if wcs is not None:
                    ax.coords[0].set_axislabel("RA")
                    ax.coords[1].set_axislabel("Dec")
                    ax.coords[0].set_ticklabel(exclude_overlapping=True)
        galaxy = self.meta.get("galaxy")
        if galaxy:
            figure.suptitle(f"{galaxy} ({self.meta.get('model', 'unknown model')})")
        return figure

    def plot_radial_profiles(
        self, names=None, *, center=None, bins=None, statistic="median"
    ):
        """Plot azimuthal profiles (`radial_profile`), one panel per property.

        Each panel shows the profile with the standard error of the
        statistic as error bars, the azimuthal scatter of the pixels as a
        band, and the median per-pixel model uncertainty as a dashed band.
        Needs matplotlib (the ``[plot]`` extra).

        Parameters
        ----------
        names : sequence of str, optional
            Properties to show, all by default.
        center, bins, statistic
            As in `radial_profile`.

        Returns
        -------
        figure : `~matplotlib.figure.Figure`
        """
        plt = _pyplot()

        names = self._plot_names(names)
        ncols = min(len(names), 3)
        nrows = -(-len(names) // ncols)
        figure, axes = plt.subplots(
            nrows,
            ncols,
            figsize=(4.2 * ncols, 3.3 * nrows),
            squeeze=False,
            layout="constrained",
        )
        for ax, name in zip(axes.flat, names, strict=False):
            profile = self.radial_profile(
                name, center=center, bins=bins, statistic=statistic
            )
            r = profile["radius"].to_value(u.arcsec)
            value = np.asarray(profile["value"].value)
            scatter = np.asarray(profile["scatter"].value)
            model = np.asarray(profile["uncertainty"].value)
            ax.fill_between(
                r, value - scatter, value + scatter, alpha=0.25, label="pixel scatter"
            )
            ax.plot(r, value - model, "k--", lw=0.8, label="model 1-sigma")
            ax.plot(r, value + model, "k--", lw=0.8)
            ax.errorbar(
                r,
                value,
                yerr=np.asarray(profile["error"].value),
                fmt="o-",
                ms=3,
                label=statistic,
            )
            ax.set_xlabel("radius [arcsec]")
            ax.set_ylabel(_colorbar_label(get_property(name)))
            ax.set_title(_plot_title(get_property(name)), fontsize="medium")
        axes.flat[0].legend(fontsize="small")
        for ax in axes.flat[len(names) :]:
            ax.set_visible(False)
        return figure

    def _plot_names(self, names):
        if names is None:
            return list(self.names)
        if isinstance(names, str):
            names = [names]
        for name in names:
            self[name]  # a clear KeyError for an unknown name
        if not names:
            msg = "names must list at least one property"
            raise PicassoInputError(msg)
        return list(names)

    def __repr__(self):
        galaxy = self.meta.get("galaxy", "?")
        return (
            f"<PropertyMaps {galaxy!r}: {', '.join(self.names)}; "
            f"shape {self.shape}, model {self.meta.get('model', '?')}>"
        )

    def to_hdulist(self):
        """Return the maps as an `~astropy.io.fits.HDUList`.

        The primary HDU holds provenance keywords; each property has an image
        HDU named after it (upper case) and one with suffix ``_ERR`` for its
        uncertainty (``INTERV95``: how many of these sigmas a 95 % interval
        spans); ``MASK`` holds the pixel mask (1 = masked).
        """
        primary = fits.PrimaryHDU()
        header = primary.header
        header["ORIGIN"] = "picasso_astro"
        header["GALAXY"] = str(self.meta.get("galaxy", ""))
        header["MODEL"] = str(self.meta.get("model", ""))
        header["MODELREV"] = str(self.meta.get("model_revision", ""))
        header["PKGVERS"] = (
            str(self.meta.get("package_version", "")),
            "picasso_astro version",
        )
        inputs = self.meta.get("inputs", [])
        header["NINPUTS"] = len(inputs)
        for i, source in enumerate(inputs, start=1):
            header[f"INPUT{i}"] = str(source)
        header["PROPS"] = ",".join(self.names)
        # No inline comment: one on a card of 47-68 characters would not fit.
        header["PICMETA"] = json.dumps(self.meta, sort_keys=True, default=str)
        header.add_comment("PICMETA: the maps' provenance as JSON")
        hdus = [primary]
        wcs_header = self.wcs.to_header(relax=True) if self.wcs is not None else None
        common_mask = self.footprint_mask()
        for name, nd in self._maps.items():
            for suffix, data, comment in (
                ("", nd.data, f"{nd.meta.get('quantity', name)}"),
                (_ERR_SUFFIX, nd.uncertainty.array, "1-sigma uncertainty, same unit"),
            ):
                hdu = fits.ImageHDU(
                    np.asarray(data, dtype=np.float32), name=(name + suffix).upper()
                )
                if wcs_header is not None:
                    hdu.header.update(wcs_header)
                hdu.header["BUNIT"] = (nd.unit.to_string(), comment[:47])
                hdu.header["PROPERTY"] = name
                if suffix == _ERR_SUFFIX:
                    hdu.header["INTERV95"] = (
                        self._interval_95(name),
                        "95% interval: value +- INTERV95 x this",
                    )
                hdus.append(hdu)
            if not _same_mask(nd.mask, common_mask):
                # A map whose mask was changed on its own keeps it.
                own = fits.ImageHDU(
                    np.asarray(nd.mask, dtype=np.uint8),
                    name=f"{name.upper()}_{_MASK_EXTNAME}",
                )
                own.header["PROPERTY"] = name
                hdus.append(own)
        mask_hdu = fits.ImageHDU(self.bitmask, name=_MASK_EXTNAME)
        if wcs_header is not None:
            mask_hdu.header.update(wcs_header)
        mask_hdu.header["MASKTYPE"] = ("BITMASK", "one bit per reason, see MASKBn")
        for name, value, description in describe_bits():
            bit = int(value).bit_length() - 1
            mask_hdu.header[f"MASKB{bit}"] = (name, description)
        mask_hdu.header["DONOTUSE"] = (int(DO_NOT_USE), "bits that set NDData.mask")
        hdus.append(mask_hdu)
        return fits.HDUList(hdus)

    def write(self, path, *, overwrite=False):
        """Write all maps to one multi-extension FITS file, atomically.

        The file is written to a temporary name beside ``path`` and renamed
        into place, so an interrupted write never leaves a partial file.

        Parameters
        ----------
        path : str or `~pathlib.Path`
        overwrite : bool
            Replace an existing file.

        Returns
        -------
        path : `~pathlib.Path`

        Raises
        ------
        FileExistsError
            If ``path`` exists and ``overwrite`` is False.
        PicassoInputError
            If the file cannot be written (the disk is full, permission
            denied, ...); nothing is left behind.
        """
        path = Path(path)
        if path.exists() and not overwrite:
            msg = f"{path} exists; pass overwrite=True to replace it"
            raise FileExistsError(msg)
        hdulist = self.to_hdulist()
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            with atomic_path(path) as tmp:
                # The HDUs were built here, card by card (each checked as it
                # was set): verifying them again cost a third of the write.
                hdulist.writeto(
                    tmp, overwrite=True, checksum=True, output_verify="ignore"
                )
        except OSError as exc:
            raise write_failure(path, exc, "the maps") from None
        return path

    @classmethod
    def read(cls, path):
        """Read maps written by `write`.

        Parameters
        ----------
        path : str or `~pathlib.Path`

        Returns
        -------
        maps : `PropertyMaps`
        """
        try:
            hdulist = fits.open(path, memmap=False, checksum=True)
        except (OSError, ValueError) as exc:
            msg = f"{path}: not a readable FITS file ({exc})"
            raise PicassoInputError(msg) from None
        with hdulist:
            header = hdulist[0].header
            if header.get("ORIGIN") != "picasso_astro" or "PROPS" not in header:
                msg = f"{path}: not a picasso_astro maps file (no PROPS keyword)"
                raise PicassoInputError(msg)
            meta = json.loads(header.get("PICMETA", "{}"))
            mask_hdu = hdulist[_MASK_EXTNAME]
            if mask_hdu.header.get("MASKTYPE") == "BITMASK":
                bitmask = mask_hdu.data.astype(np.int32)
            else:  # files written before the bit mask: 1 = masked
                bitmask = np.where(mask_hdu.data > 0, int(MaskBit.BAD_PIXEL), 0)
            mask = (bitmask & int(DO_NOT_USE)) != 0
            maps = {}
            for name in header["PROPS"].split(","):
                hdu = hdulist[name.upper()]
                err = hdulist[name.upper() + _ERR_SUFFIX]
                own = f"{name.upper()}_{_MASK_EXTNAME}"
                map_mask = hdulist[own].data.astype(bool) if own in hdulist else mask
                wcs = WCS(hdu.header) if "CTYPE1" in hdu.header else None
                prop = get_property(name)
                maps[name] = NDData(
                    hdu.data.astype(np.float32),
                    uncertainty=StdDevUncertainty(err.data.astype(np.float32)),
                    mask=map_mask.copy(),
                    wcs=wcs,
                    unit=u.Unit(hdu.header["BUNIT"]),
                    meta={
                        "property": name,
                        "description": prop.description,
                        "quantity": prop.log_label,
                    },
                )
        return cls(maps, meta=meta, bitmask=bitmask)


def _same_mask(mask, other):
    if mask is None or other is None:
        return mask is other
    return mask is other or np.array_equal(mask, other)


def _pyplot():
    """Return matplotlib.pyplot, or say how to install it."""
    try:
        import matplotlib.pyplot as plt
    except ImportError:
        msg = "plots need matplotlib: pip install 'picasso_astro[plot]'"
        raise ImportError(msg) from None
    return plt
