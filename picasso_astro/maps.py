"""`PropertyMaps`: one `~astropy.nddata.NDData` per property, and its FITS file."""

import json
import os
import tempfile
from pathlib import Path

import astropy.units as u
import numpy as np
from astropy.io import fits
from astropy.nddata import NDData, StdDevUncertainty
from astropy.wcs import WCS

from .exceptions import PicassoInputError
from .properties import get_property

__all__ = ["PropertyMaps"]

_MASK_EXTNAME = "MASK"
_ERR_SUFFIX = "_ERR"


class PropertyMaps:
    """Maps of physical properties of one galaxy, on the input's pixel grid.

    Each map is an `~astropy.nddata.NDData` holding the log10 of the property
    (unit ``dex(...)``; plain numbers for metallicities), a
    `~astropy.nddata.StdDevUncertainty` from the model's bin distribution, a mask
    (True where the pixel is outside the footprint or was masked), the WCS,
    and provenance in ``meta``.

    Parameters
    ----------
    maps : dict of str to `~astropy.nddata.NDData`
        Property name to its map.
    meta : dict, optional
        Provenance shared by all maps: galaxy name, model name and revision,
        package version, input files, preprocessing steps.
    """

    def __init__(self, maps, *, meta=None):
        if not maps:
            msg = "PropertyMaps needs at least one map"
            raise ValueError(msg)
        self._maps = dict(maps)
        self.meta = dict(meta or {})

    @classmethod
    def from_arrays(cls, values, sigmas, mask, *, names, wcs=None, meta=None):
        """Build maps from stacked model outputs.

        Parameters
        ----------
        values, sigmas : 3D `~numpy.ndarray`
            Shape ``(n_properties, ny, nx)``: log10 values and 1-sigma uncertainties.
        mask : 2D bool `~numpy.ndarray`
            True on pixels to flag in every map.
        names : sequence of str
            Property names, in the order of the first axis.
        wcs : `~astropy.wcs.WCS`, optional
        meta : dict, optional
        """
        maps = {}
        for name, value, sigma in zip(names, values, sigmas, strict=True):
            prop = get_property(name)
            maps[name] = NDData(
                np.asarray(value, dtype=np.float32),
                uncertainty=StdDevUncertainty(np.asarray(sigma, dtype=np.float32)),
                mask=np.asarray(mask, dtype=bool).copy(),
                wcs=wcs,
                unit=prop.unit,
                meta={
                    "property": name,
                    "description": prop.description,
                    "quantity": prop.log_label,
                },
            )
        return cls(maps, meta=meta)

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
        uncertainty; ``MASK`` holds the pixel mask (1 = masked).
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
        header["PICMETA"] = (
            json.dumps(self.meta, sort_keys=True, default=str),
            "provenance as JSON",
        )
        hdus = [primary]
        wcs_header = self.wcs.to_header(relax=True) if self.wcs is not None else None
        first_mask = None
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
                hdus.append(hdu)
            if first_mask is None:
                first_mask = nd.mask
        mask_hdu = fits.ImageHDU(
            np.asarray(first_mask, dtype=np.uint8), name=_MASK_EXTNAME
        )
        if wcs_header is not None:
            mask_hdu.header.update(wcs_header)
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
        """
        path = Path(path)
        if path.exists() and not overwrite:
            msg = f"{path} exists; pass overwrite=True to replace it"
            raise FileExistsError(msg)
        path.parent.mkdir(parents=True, exist_ok=True)
        hdulist = self.to_hdulist()
        fd, tmp = tempfile.mkstemp(
            dir=path.parent, prefix=f".{path.name}.", suffix=".tmp"
        )
        os.close(fd)
        try:
            hdulist.writeto(tmp, overwrite=True, checksum=True)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
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
            mask = hdulist[_MASK_EXTNAME].data.astype(bool)
            maps = {}
            for name in header["PROPS"].split(","):
                hdu = hdulist[name.upper()]
                err = hdulist[name.upper() + _ERR_SUFFIX]
                wcs = WCS(hdu.header) if "CTYPE1" in hdu.header else None
                prop = get_property(name)
                maps[name] = NDData(
                    hdu.data.astype(np.float32),
                    uncertainty=StdDevUncertainty(err.data.astype(np.float32)),
                    mask=mask.copy(),
                    wcs=wcs,
                    unit=u.Unit(hdu.header["BUNIT"]),
                    meta={
                        "property": name,
                        "description": prop.description,
                        "quantity": prop.log_label,
                    },
                )
        return cls(maps, meta=meta)
