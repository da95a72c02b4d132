"""Turn what users pass to `~picasso_astro.predict` into per-band images.

Accepted, per galaxy: five single-band FITS cutouts (the band from the FILTER
or BAND keyword, else from the file name, in any order), one five-plane cube
(file, HDU, `~astropy.io.fits.HDUList` or `~astropy.nddata.NDData`), or a
mapping from band to any single-band input.
"""

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from astropy.io import fits
from astropy.nddata import NDData
from astropy.stats import mad_std
from astropy.utils.exceptions import AstropyWarning
from astropy.wcs import WCS, FITSFixedWarning

from ._warnings import ignoring
from .exceptions import PicassoInputError
from .images import BANDS, BandImage

__all__ = [
    "GalaxyInput",
    "band_from_filename",
    "band_from_header",
    "parse_inputs",
]

_BAND_TOKEN = re.compile(r"(?<![A-Za-z0-9])([ugriz])(?![A-Za-z0-9])")
_NMGY_UNITS = {"nanomaggy", "nanomaggies", "nmgy", "nmaggy", "nmaggies"}
_COUNT_UNITS = {"count", "counts", "dn", "adu", "ct"}


@dataclass
class GalaxyInput:
    """The five bands of one galaxy, as given.

    Parameters
    ----------
    name : str
        Used for output file names and messages.
    images : dict of str to `~picasso_astro.images.BandImage`
    sources : list of str
        Input files (or descriptions of in-memory inputs), for provenance.
    """

    name: str
    images: dict
    sources: list = field(default_factory=list)


def band_from_header(header):
    """Return the band named by a FILTER or BAND keyword, or None.

    Parameters
    ----------
    header : `~astropy.io.fits.Header`

    Returns
    -------
    band : str or None
    """
    for key in ("FILTER", "BAND", "FILTNAM", "FILTER1"):
        value = header.get(key)
        if not isinstance(value, str):
            continue
        text = value.strip().lower().replace("sdss", "").strip(" _-'\"")
        if text in BANDS:
            return text
    return None


def band_from_filename(path):
    """Return the SDSS band named in a file name, or None.

    The band is a single letter u, g, r, i or z standing alone between
    separators, as in ``frame-r-001000-1-0100.fits`` or ``ngc4321_g.fits``.

    Parameters
    ----------
    path : str or `~pathlib.Path`

    Returns
    -------
    band : str or None
        None when no such letter, or more than one, is in the name.
    """
    stem = Path(path).name
    for suffix in (".bz2", ".gz", ".fz", ".fits", ".fit", ".fts"):
        stem = stem.removesuffix(suffix)
    found = _BAND_TOKEN.findall(stem)
    return found[0] if len(found) == 1 else None


def _galaxy_key(path):
    stem = Path(path).name
    match = list(_BAND_TOKEN.finditer(stem))
    if len(match) == 1:
        span = match[0].span()
        stem = stem[: span[0]] + "{band}" + stem[span[1] :]
    return str(Path(path).parent / stem)


def _galaxy_name(path):
    name = Path(_galaxy_key(path)).name
    for suffix in (".bz2", ".gz", ".fz", ".fits", ".fit", ".fts"):
        name = name.removesuffix(suffix)
    name = re.sub(r"[-_.]?\{band\}[-_.]?", "-", name).strip("-_.")
    return name or Path(path).stem


def _read_wcs(header, source):
    # Old SDSS and survey headers carry non-standard but harmless cards
    # (RADECSYS, date formats) that astropy fixes silently for us.
    with ignoring(FITSFixedWarning):
        try:
            wcs = WCS(header, naxis=2)
        except Exception as exc:
            msg = f"{source}: its WCS cannot be read ({exc})"
            raise PicassoInputError(msg) from None
    if not wcs.has_celestial:
        msg = (
            f"{source}: no celestial WCS in the header; picasso_astro needs each "
            "cutout's sky position to align the bands and to place the maps"
        )
        raise PicassoInputError(msg)
    return wcs


def _flux_scale(data, header, source):
    """Return the factor to nanomaggies and how it was decided."""
    unit = str(header.get("BUNIT", "")).strip().lower()
    nmgy = header.get("NMGY")
    if unit in _NMGY_UNITS:
        return 1.0, "BUNIT nanomaggies"
    if unit in _COUNT_UNITS or (unit == "" and nmgy is not None):
        if nmgy is None:
            msg = (
                f"{source}: the image is in {unit or 'counts'} but has no NMGY "
                "keyword to convert it to nanomaggies; give calibrated images"
            )
            raise PicassoInputError(msg)
        if unit == "" and all(k in header for k in ("SKY", "GAIN")):
            # Without BUNIT, tell counts from sky-subtracted nanomaggies by
            # the noise the header implies for each (Celeste-style stamps).
            counts_noise = np.sqrt(
                max(header["SKY"], 0) / header["GAIN"] + header.get("DARKVAR", 0)
            )
            measured = mad_std(data, ignore_nan=True)
            if measured > 0 and abs(np.log(measured / (counts_noise * nmgy))) < abs(
                np.log(measured / counts_noise)
            ):
                return 1.0, "nanomaggies (noise matches SKY/GAIN/NMGY)"
        return float(nmgy), "counts x NMGY"
    if unit and unit not in _NMGY_UNITS:
        msg = (
            f"{source}: pixel unit BUNIT={header['BUNIT']!r} is not supported; "
            "picasso_astro needs nanomaggies or counts with an NMGY keyword"
        )
        raise PicassoInputError(msg)
    return 1.0, "assumed nanomaggies (no BUNIT)"


def _image_from_hdu(hdu, *, band, source):
    data = hdu.data
    if data is None or data.ndim != 2:
        shape = None if data is None else data.shape
        msg = f"{source}: expected a 2D image, found data of shape {shape}"
        raise PicassoInputError(msg)
    return _make_image(np.asarray(data, dtype=np.float32), hdu.header, band, source)


def _make_image(data, header, band, source):
    if data.size == 0:
        msg = f"{source}: the image is empty"
        raise PicassoInputError(msg)
    if not np.isfinite(data).any():
        msg = f"{source}: every pixel is NaN or infinite; the image holds no data"
        raise PicassoInputError(msg)
    scale, how = _flux_scale(data, header, source)
    meta = {"source": source, "flux_unit": how}
    for key in ("RUN", "CAMCOL", "FIELD"):
        if key in header:
            meta[key.lower()] = header[key]
    return BandImage(
        band, data * np.float32(scale), wcs=_read_wcs(header, source), meta=meta
    )


def _first_image_hdu(hdulist, source):
    for hdu in hdulist:
        if hdu.is_image and hdu.data is not None:
            return hdu
    msg = f"{source}: no image data in any HDU"
    raise PicassoInputError(msg)


def _open_fits(path):
    path = Path(path)
    if not path.is_file():
        msg = f"{path}: no such file"
        raise PicassoInputError(msg)
    try:
        with ignoring(AstropyWarning):
            hdulist = fits.open(path, memmap=False)
            hdulist.verify("silentfix")
            for hdu in hdulist:
                _ = hdu.data
    except (OSError, ValueError, TypeError, EOFError) as exc:
        msg = f"{path}: not a readable FITS file ({exc})"
        raise PicassoInputError(msg) from None
    return hdulist


def _cube_images(data, header, source):
    if data.shape[0] != len(BANDS):
        msg = (
            f"{source}: a cube must have {len(BANDS)} planes (u, g, r, i, z), "
            f"found {data.shape[0]}"
        )
        raise PicassoInputError(msg)
    header2d = header.copy()
    if "NAXIS" in header2d:
        wcs = _read_wcs(header, source)
        header2d = wcs.to_header() if wcs is not None else fits.Header()
        for key in ("BUNIT", "NMGY", "SKY", "GAIN", "DARKVAR"):
            if key in header:
                header2d[key] = header[key]
    return {
        band: _make_image(np.asarray(plane, dtype=np.float32), header2d, band, source)
        for band, plane in zip(BANDS, data, strict=True)
    }


def _images_from_hdulist(hdulist, source):
    """Read a cube, or several single-band HDUs with FILTER keywords."""
    hdu = _first_image_hdu(hdulist, source)
    if hdu.data.ndim == 3:
        return _cube_images(hdu.data, hdu.header, source)
    images = {}
    for hdu in hdulist:
        if hdu.is_image and hdu.data is not None:
            band = band_from_header(hdu.header)
            if band is None:
                break
            images[band] = _image_from_hdu(hdu, band=band, source=source)
    if len(images) < 2:
        return None
    return images


def _nddata_images(nddata, source):
    data = np.asarray(nddata.data, dtype=np.float32)
    header = fits.Header()
    if nddata.wcs is not None:
        header.update(nddata.wcs.to_header())
    unit = getattr(nddata, "unit", None)
    if unit is not None:
        header["BUNIT"] = unit.to_string()
    for key, value in (nddata.meta or {}).items():
        if isinstance(key, str) and len(key) <= 8 and np.isscalar(value):
            header[key.upper()] = value
    if nddata.mask is not None:
        data = np.where(np.asarray(nddata.mask, dtype=bool), np.nan, data)
    if data.ndim == 3:
        return _cube_images(data, header, source)
    if data.ndim != 2:
        msg = f"{source}: NDData must be 2D (one band) or 3D (five bands)"
        raise PicassoInputError(msg)
    band = band_from_header(header) or (nddata.meta or {}).get("band")
    return {band: _make_image(data, header, band, source)} if band else {None: data}


def _single_band(item, band, source):
    """One band from a file, HDU, HDUList or NDData, the band given or found."""
    if isinstance(item, str | Path):
        with _open_fits(item) as hdulist:
            hdu = _first_image_hdu(hdulist, source)
            band = band or band_from_header(hdu.header) or band_from_filename(item)
            if band is None:
                msg = (
                    f"{source}: cannot tell its band: no FILTER or BAND keyword and "
                    "no single u/g/r/i/z letter in the file name; rename it (e.g. "
                    "galaxy-r.fits) or pass a dict {band: file}"
                )
                raise PicassoInputError(msg)
            return _image_from_hdu(hdu, band=band, source=source)
    if isinstance(item, fits.HDUList):
        item = _first_image_hdu(item, source)
    if isinstance(item, fits.PrimaryHDU | fits.ImageHDU | fits.CompImageHDU):
        band = band or band_from_header(item.header)
        if band is None:
            msg = f"{source}: the HDU has no FILTER keyword; pass a dict {{band: hdu}}"
            raise PicassoInputError(msg)
        return _image_from_hdu(item, band=band, source=source)
    if isinstance(item, NDData):
        images = _nddata_images(item, source)
        image = next(iter(images.values()))
        if isinstance(image, np.ndarray):
            if band is None:
                msg = f"{source}: the NDData has no band in its meta; pass {{band: nd}}"
                raise PicassoInputError(msg)
            header = item.wcs.to_header() if item.wcs is not None else fits.Header()
            return _make_image(image, header, band, source)
        return image
    msg = (
        f"{source}: unsupported input of type {type(item).__name__}; give FITS file "
        "names, HDUs, HDULists, NDData/CCDData or a dict {band: one of those}"
    )
    raise TypeError(msg)


def _check_bands(images, name, sources):
    bands = [image.band for image in images]
    duplicates = sorted({b for b in bands if bands.count(b) > 1})
    if duplicates:
        msg = (
            f"galaxy {name!r}: band(s) {', '.join(duplicates)} given more than once "
            f"(in {', '.join(sources)}); give exactly one image per band"
        )
        raise PicassoInputError(msg)
    missing = [b for b in BANDS if b not in bands]
    if missing:
        msg = (
            f"galaxy {name!r}: missing band(s) {', '.join(missing)}; picasso_astro "
            f"needs all of u, g, r, i and z (found {', '.join(bands) or 'none'})"
        )
        raise PicassoInputError(msg)
    return {image.band: image for image in images}


def parse_inputs(inputs):
    """Split ``inputs`` into galaxies, each with its five band images.

    Parameters
    ----------
    inputs : str, `~pathlib.Path`, HDU, HDUList, NDData, dict or list
        See `~picasso_astro.predict`.

    Returns
    -------
    galaxies : list of `GalaxyInput` or `PicassoInputError`
        In input order; an entry is the error for a galaxy that could not be read,
        so that a batch can go on past it.
    """
    single = (str, Path, fits.HDUList, NDData, Mapping, fits.PrimaryHDU, fits.ImageHDU)
    if isinstance(inputs, single):
        inputs = [inputs]
    items = list(inputs)
    if not items:
        msg = "no inputs given"
        raise PicassoInputError(msg)
    if all(isinstance(item, str | Path) for item in items):
        return list(_galaxies_from_files(items))
    if all(isinstance(item, Mapping) for item in items):
        return [_galaxy_from_mapping(item, i) for i, item in enumerate(items)]
    if all(isinstance(item, fits.HDUList | NDData) for item in items):
        cube_like = [_galaxy_from_object(item, i) for i, item in enumerate(items)]
        if all(not isinstance(g, dict) for g in cube_like):
            return cube_like
        return [_guarded(lambda: _in_memory_galaxy(items, "input"))]
    if all(isinstance(item, fits.PrimaryHDU | fits.ImageHDU) for item in items):
        return [_guarded(lambda: _in_memory_galaxy(items, "HDU"))]
    msg = (
        "inputs must be FITS file names, HDULists, NDData/CCDData, HDUs or dicts "
        "{band: input}, all of one kind"
    )
    raise TypeError(msg)


def _in_memory_galaxy(items, label):
    """One galaxy from single-band in-memory objects, each naming its band."""
    images = [_single_band(item, None, f"{label} {i}") for i, item in enumerate(items)]
    return GalaxyInput(
        "galaxy-0", _check_bands(images, "galaxy-0", ["in-memory"]), ["in-memory"]
    )


def _guarded(make):
    try:
        return make()
    except PicassoInputError as exc:
        return exc


def _is_cube(path):
    with _open_fits(path) as hdulist:
        return _first_image_hdu(hdulist, str(path)).data.ndim == 3


def _galaxies_from_files(paths):
    """Group file names into galaxies: a cube alone, single bands by name.

    A file that cannot be read makes its whole galaxy an error.
    """
    groups = {}
    for path in paths:
        key = _galaxy_key(path)
        try:
            if _is_cube(path):
                key = str(path)
                groups[key] = {"cube": path, "paths": [path], "error": None}
                continue
        except PicassoInputError as exc:
            group = groups.setdefault(key, {"cube": None, "paths": [], "error": exc})
            group["error"] = group["error"] or exc
            continue
        group = groups.setdefault(key, {"cube": None, "paths": [], "error": None})
        group["paths"].append(path)
    for key, group in groups.items():
        if group["error"] is not None:
            yield group["error"]
        elif group["cube"] is not None:
            yield _guarded(lambda path=group["cube"]: _cube_galaxy(path))
        else:
            yield _guarded(lambda k=key, m=group["paths"]: _band_galaxy(k, m))


def _cube_galaxy(path):
    source = str(path)
    with _open_fits(path) as hdulist:
        images = _images_from_hdulist(hdulist, source)
    return GalaxyInput(_galaxy_name(path), images, [source])


def _band_galaxy(key, paths):
    name = _galaxy_name(key)
    sources = [str(p) for p in paths]
    images = [_single_band(p, None, str(p)) for p in paths]
    return GalaxyInput(name, _check_bands(images, name, sources), sources)


def _galaxy_from_mapping(mapping, index):
    name = f"galaxy-{index}"
    sources = []
    images = []
    try:
        for band, item in mapping.items():
            if band not in BANDS:
                msg = f"{name}: {band!r} is not a band; use u, g, r, i, z"
                raise PicassoInputError(msg)
            source = str(item) if isinstance(item, str | Path) else f"{band} ({name})"
            sources.append(source)
            images.append(_single_band(item, band, source))
        return GalaxyInput(name, _check_bands(images, name, sources), sources)
    except PicassoInputError as exc:
        return exc


def _galaxy_from_object(item, index):
    name = f"galaxy-{index}"
    source = f"{type(item).__name__} {index}"
    try:
        if isinstance(item, fits.HDUList):
            images = _images_from_hdulist(item, source)
        else:
            images = _nddata_images(item, source)
            if None in images or len(images) == 1:
                return {}
        if images is None:
            return {}
        return GalaxyInput(
            name, _check_bands(list(images.values()), name, [source]), [source]
        )
    except PicassoInputError as exc:
        return exc
