"""Turn what users pass to `~picasso_astro.predict` into per-band images.

Accepted, per galaxy: five single-band FITS cutouts (the band from the FILTER
or BAND keyword, else from the file name, in any order), one five-plane cube
(file, HDU, `~astropy.io.fits.HDUList` or `~astropy.nddata.NDData`), or a
mapping from band to any single-band input.

Files are planned from their headers alone: `parse_inputs` groups them into
galaxies and finds each one's bands without reading a pixel, and a
`GalaxyFiles` reads its pixels only when `GalaxyFiles.load` is called, so that
a catalogue of any length can be planned in little memory.
"""

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import astropy.units as u
import numpy as np
from astropy.coordinates import Angle, SkyCoord
from astropy.io import fits
from astropy.nddata import NDData
from astropy.stats import mad_std
from astropy.table import Table

from ._fits_files import first_image_header, open_fits
from ._wcs import read_wcs
from .exceptions import PicassoInputError
from .images import BANDS, BandImage

__all__ = [
    "GalaxyFiles",
    "GalaxyInput",
    "Targets",
    "band_from_filename",
    "band_from_header",
    "parse_inputs",
    "parse_targets",
    "read_catalog",
    "target_name",
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

    def load(self):
        """Return the galaxy itself: its images are already in memory.

        Returns
        -------
        galaxy : `GalaxyInput`
        """
        return self


@dataclass
class GalaxyFiles:
    """The files of one galaxy, known from their headers; pixels not yet read.

    Parameters
    ----------
    name : str
        Used for output file names and messages.
    sources : list of str
        The files: one five-plane cube, or one file per band.
    bands : list of str or None
        The band of each file in ``sources``; None for a cube.
    """

    name: str
    sources: list
    bands: list | None = None

    def load(self):
        """Read the pixels.

        Each file is opened once, now.

        Returns
        -------
        galaxy : `GalaxyInput`

        Raises
        ------
        PicassoInputError
            If a file cannot be read or its pixels, units or WCS are unusable.
        """
        if self.bands is None:
            (path,) = self.sources
            return GalaxyInput(self.name, _cube_galaxy(path), [path])
        images = {
            band: _band_image(path, band)
            for path, band in zip(self.sources, self.bands, strict=True)
        }
        _check_one_unit(list(images.values()), self.name)
        return GalaxyInput(self.name, images, list(self.sources))


#: Header keywords that may name a band, first found wins.
BAND_KEYWORDS = ("FILTER", "BAND", "FILTNAM", "FILTER1")


def band_from_header(header):
    """Return the band named by a FILTER or BAND keyword, or None.

    Parameters
    ----------
    header : `~astropy.io.fits.Header`

    Returns
    -------
    band : str or None
    """
    for key in BAND_KEYWORDS:
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


#: File extensions left out when grouping files into galaxies.
_EXTENSIONS = (
    ".fits",
    ".fit",
    ".fts",
    ".png",
    ".jpg",
    ".jpeg",
    ".gif",
    ".tif",
    ".tiff",
)


def _without_suffixes(name):
    """Return a file name without its compression suffix and its extension."""
    for suffix in (".bz2", ".gz", ".fz"):
        name = name.removesuffix(suffix)
    for suffix in _EXTENSIONS:
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return name


def _galaxy_key(path):
    """Return what the file names of one galaxy's bands share.

    The band letter becomes ``{band}`` and the extension is left out, so that
    ``gal-r.png`` is seen as the r band of ``gal-g.fits``'s galaxy (and
    refused as such, not reported as a missing band).
    """
    stem = _without_suffixes(Path(path).name)
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
                return 1.0, NOISE_SAYS_NMGY
            return float(nmgy), NOISE_SAYS_COUNTS
        return float(nmgy), "counts x NMGY"
    if unit and unit not in _NMGY_UNITS:
        msg = (
            f"{source}: pixel unit BUNIT={header['BUNIT']!r} is not supported; "
            "picasso_astro needs nanomaggies or counts with an NMGY keyword"
        )
        raise PicassoInputError(msg)
    _refuse_magnitudes(data, source)
    return 1.0, ASSUMED_NMGY


#: How an image's unit was decided when no BUNIT said it.
NOISE_SAYS_NMGY = "nanomaggies (noise matches SKY/GAIN/NMGY)"
NOISE_SAYS_COUNTS = "counts x NMGY (noise matches counts)"
ASSUMED_NMGY = "assumed nanomaggies (no BUNIT)"
INFERRED_UNITS = (NOISE_SAYS_NMGY, NOISE_SAYS_COUNTS, ASSUMED_NMGY)


def _refuse_magnitudes(data, source):
    """Refuse an image without BUNIT that holds magnitudes rather than fluxes.

    Per-pixel AB magnitudes lie between about 10 and 35 everywhere, and a
    galaxy is where they are smallest.
    """
    finite = data[np.isfinite(data)]
    if finite.size < 16 or finite.min() < 5 or not 10 < np.median(finite) < 40:
        return
    ny, nx = data.shape
    centre = data[
        ny // 2 - ny // 8 : ny // 2 + ny // 8 + 1,
        nx // 2 - nx // 8 : nx // 2 + nx // 8 + 1,
    ]
    if np.nanmedian(centre) < np.median(finite):
        msg = (
            f"{source}: the pixels (between {finite.min():.1f} and "
            f"{finite.max():.1f}, smallest at the centre) look like magnitudes, "
            "not fluxes; give fluxes in nanomaggies (BUNIT = 'nanomaggy'), "
            "e.g. 10**(-0.4 * (mag - 22.5))"
        )
        raise PicassoInputError(msg)


def _image_from_hdu(hdu, *, band, source):
    data = hdu.data
    if data is None or data.ndim != 2:
        found = "no data" if data is None else f"{data.ndim}-D data {data.shape}"
        msg = (
            f"{source}: expected a 2-D image of the {band} band, found {found}; "
            "give the band's 2-D image (one plane of a cube saved alone), or all "
            "five bands as one five-plane cube"
        )
        raise PicassoInputError(msg)
    return _make_image(np.asarray(data, dtype=np.float32), hdu.header, band, source)


def _make_image(data, header, band, source):
    if data.size == 0:
        size = " x ".join(map(str, data.shape[::-1]))
        msg = (
            f"{source}: the {band}-band image is empty ({size} pixels); give a "
            "cutout that holds the galaxy, or get the file again if it should "
            "have held one"
        )
        raise PicassoInputError(msg)
    if not np.isfinite(data).any():
        msg = (
            f"{source}: every pixel is NaN or infinite in the {band}-band image, "
            "so it holds no data (off the survey's footprint, or a failed "
            "reduction?); give a cutout of this band that has data"
        )
        raise PicassoInputError(msg)
    scale, how = _flux_scale(data, header, source)
    meta = {"source": source, "flux_unit": how}
    for key in ("RUN", "CAMCOL", "FIELD"):
        if key in header:
            meta[key.lower()] = header[key]
    return BandImage(
        band,
        data * np.float32(scale),
        wcs=read_wcs(header, source),
        psf_fwhm=_header_psf_fwhm(header, source),
        meta=meta,
    )


#: Header keyword holding a band's PSF FWHM in arcsec (written by
#: ``picasso-train example``; add it to cutouts whose seeing is known).
PSF_FWHM_KEYWORD = "PSF_FWHM"


def _header_psf_fwhm(header, source):
    value = header.get(PSF_FWHM_KEYWORD)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        msg = (
            f"{source}: {PSF_FWHM_KEYWORD} = {value!r} is not a PSF FWHM; give it "
            "in arcsec as a positive number, or remove the keyword"
        )
        raise PicassoInputError(msg)
    return float(value)


def _first_image_hdu(hdulist, source):
    for hdu in hdulist:
        if hdu.is_image and hdu.data is not None:
            return hdu
    msg = (
        f"{source}: no image data in any HDU (only headers or tables); give the "
        "file that holds the band's image"
    )
    raise PicassoInputError(msg)


def _no_band_message(path):
    """Say why a file's band cannot be told, naming a keyword that is not a band."""
    try:
        header = fits.getheader(path)
    except (OSError, ValueError):
        header = fits.Header()
    found = [f"{key} = {header[key]!r}" for key in BAND_KEYWORDS if key in header]
    if found:
        return (
            f"{path}: cannot tell its band: {', '.join(found)} is not one of u, g, "
            "r, i, z and the file name holds no single band letter; fix the "
            "keyword, rename the file (e.g. galaxy-r.fits) or pass a dict "
            "{band: file}"
        )
    return (
        f"{path}: cannot tell its band: no FILTER or BAND keyword and no single "
        "u/g/r/i/z letter in the file name; rename it (e.g. galaxy-r.fits) or "
        "pass a dict {band: file}"
    )


def _read_header(path):
    """Return the band (or None) and shape of a file's first image, from headers."""
    header = first_image_header(path)
    shape = [header.get(f"NAXIS{n}", 0) for n in range(1, 1 + header["NAXIS"])]
    return band_from_header(header), tuple(shape[::-1])


def _check_planes(planes, source):
    if planes != len(BANDS):
        msg = (
            f"{source}: a cube must have {len(BANDS)} planes (u, g, r, i, z), "
            f"found {planes}; give a five-plane cube in that order, or one 2-D "
            "image per band"
        )
        raise PicassoInputError(msg)


def _cube_images(data, header, source):
    _check_planes(data.shape[0], source)
    header2d = header.copy()
    if "NAXIS" in header2d:
        wcs = read_wcs(header, source)
        header2d = wcs.to_header() if wcs is not None else fits.Header()
        for key in ("BUNIT", "NMGY", "SKY", "GAIN", "DARKVAR"):
            if key in header:
                header2d[key] = header[key]
    images = {
        band: _make_image(np.asarray(plane, dtype=np.float32), header2d, band, source)
        for band, plane in zip(BANDS, data, strict=True)
    }
    _check_one_unit(list(images.values()), source)
    return images


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
        with open_fits(item) as hdulist:
            hdu = _first_image_hdu(hdulist, source)
            band = band or band_from_header(hdu.header) or band_from_filename(item)
            if band is None:
                raise PicassoInputError(_no_band_message(item))
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
            if getattr(item, "unit", None) is not None:
                header["BUNIT"] = item.unit.to_string()
            return _make_image(image, header, band, source)
        return image
    msg = (
        f"{source}: unsupported input of type {type(item).__name__}; give FITS file "
        "names, HDUs, HDULists, NDData/CCDData or a dict {band: one of those}"
    )
    raise TypeError(msg)


def _check_bands(images, name, sources):
    _check_band_names([image.band for image in images], name, sources)
    _check_one_unit(images, name)
    return {image.band: image for image in images}


def _check_one_unit(images, name):
    """Refuse a galaxy whose bands' noise says different units."""
    decided = {
        image.band: image.meta.get("flux_unit")
        for image in images
        if image.meta.get("flux_unit") in (NOISE_SAYS_NMGY, NOISE_SAYS_COUNTS)
    }
    if len(set(decided.values())) > 1:
        said = {
            unit: ", ".join(b for b, u in decided.items() if u == unit)
            for unit in set(decided.values())
        }
        msg = (
            f"galaxy {name!r}: without BUNIT, the noise says nanomaggies for "
            f"{said[NOISE_SAYS_NMGY]} but counts for {said[NOISE_SAYS_COUNTS]}; "
            "the bands of one galaxy share a unit: set BUNIT ('nanomaggy', or "
            "'counts' with NMGY) in the files"
        )
        raise PicassoInputError(msg)


def _check_band_names(bands, name, sources):
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
            f"needs all of u, g, r, i and z (found {', '.join(bands) or 'none'}): "
            "give the missing band's file, named like the others but for the band "
            "letter (or with a FILTER keyword)"
        )
        raise PicassoInputError(msg)


def parse_inputs(inputs):
    """Split ``inputs`` into galaxies, each with its five band images.

    Parameters
    ----------
    inputs : str, `~pathlib.Path`, HDU, HDUList, NDData, dict or list
        See `~picasso_astro.predict`.

    Returns
    -------
    galaxies : list of `GalaxyFiles`, `GalaxyInput` or `PicassoInputError`
        In input order; an entry is the error for a galaxy that could not be read,
        so that a batch can go on past it. Files give `GalaxyFiles`, planned
        from their headers (each file opened once, no pixel read; a missing,
        duplicate or unknown band, a missing or unreadable file are found
        now); their `GalaxyFiles.load` reads the pixels and raises
        `PicassoInputError` for what only the pixels, units or WCS show.
        In-memory inputs give `GalaxyInput`. Both have ``name``, ``sources``
        and ``load()``.
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
    kinds = ", ".join(sorted({type(item).__name__ for item in items}))
    msg = (
        f"cannot read inputs of type {kinds}: give FITS file names, HDULists, "
        "NDData/CCDData, HDUs or dicts {band: input}, all of one kind"
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


def _galaxies_from_files(paths):
    """Group file names into galaxies from headers: a cube alone, bands by name.

    A file that cannot be read makes its whole galaxy an error; so does a 3-D
    file named as one band of a galaxy whose other bands are 2-D images.
    """
    headers = []
    for path in paths:
        try:
            headers.append((path, *_read_header(path), None))
        except PicassoInputError as exc:
            headers.append((path, None, None, exc))
    band_keys = {
        _galaxy_key(path)
        for path, _, shape, error in headers
        if error is not None or len(shape) != 3
    }
    groups = {}
    for path, band, shape, error in headers:
        key = _galaxy_key(path)
        if error is None and len(shape) == 3:
            if key in band_keys and "{band}" in key:
                error = _not_a_band_image(path, shape, _galaxy_name(path))
            else:
                key = str(path)
                error = _guarded(lambda n=shape[0], k=key: _check_planes(n, k))
                groups[key] = {"cube": path, "files": [], "error": error}
                continue
        group = groups.setdefault(key, {"cube": None, "files": [], "error": None})
        group["error"] = group["error"] or error
        if error is None:
            group["files"].append((path, band))
    for key, group in groups.items():
        if group["error"] is not None:
            yield group["error"]
        elif group["cube"] is not None:
            path = group["cube"]
            yield GalaxyFiles(_galaxy_name(path), [str(path)])
        else:
            yield _guarded(lambda k=key, f=group["files"]: _band_galaxy(k, f))


def _not_a_band_image(path, shape, name):
    msg = (
        f"{path}: the data are 3-D (shape {shape}), but it is named as one band "
        f"of galaxy {name!r}, whose other bands are 2-D images; expected a 2-D "
        "image: give that band's 2-D image (one plane of a cube saved alone), "
        "or all five bands as one five-plane cube"
    )
    return PicassoInputError(msg)


def _cube_galaxy(path):
    """Read the five images of a cube file."""
    source = str(path)
    with open_fits(path) as hdulist:
        hdu = _first_image_hdu(hdulist, source)
        if hdu.data.ndim != 3:
            msg = f"{source}: expected a cube, found data of shape {hdu.data.shape}"
            raise PicassoInputError(msg)
        return _cube_images(hdu.data, hdu.header, source)


def _band_image(path, band):
    """Read the image of a single-band file, its band known."""
    source = str(path)
    with open_fits(path) as hdulist:
        hdu = _first_image_hdu(hdulist, source)
        return _image_from_hdu(hdu, band=band, source=source)


def _band_galaxy(key, files):
    """Plan a galaxy of single-band files from their ``(path, band)``."""
    name = _galaxy_name(key)
    sources = [str(path) for path, _ in files]
    bands = []
    for path, band in files:
        band = band or band_from_filename(path)
        if band is None:
            raise PicassoInputError(_no_band_message(path))
        bands.append(band)
    _check_band_names(bands, name, sources)
    return GalaxyFiles(name, sources, bands)


def _galaxy_from_mapping(mapping, index):
    """Return the galaxy of ``{band: input}``, planned lazily if all are files."""
    name = f"galaxy-{index}"
    files = all(isinstance(item, str | Path) for item in mapping.values())
    sources = []
    images = []
    try:
        for band, item in mapping.items():
            if band not in BANDS:
                msg = f"{name}: {band!r} is not a band; use u, g, r, i, z"
                raise PicassoInputError(msg)
            source = str(item) if isinstance(item, str | Path) else f"{band} ({name})"
            sources.append(source)
            if files:
                _read_header(item)
            else:
                images.append(_single_band(item, band, source))
        if files:
            bands = list(mapping)
            _check_band_names(bands, name, sources)
            return GalaxyFiles(name, sources, bands)
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


# ---------------------------------------------------------------------------
# Targets: where the galaxies are in the frames.
# ---------------------------------------------------------------------------

#: Column names recognised in target tables, first match wins (case-insensitive).
NAME_COLUMNS = ("name", "id", "objid")
RADIUS_COLUMNS = ("half_light_radius", "petror50_r", "r50")


@dataclass
class Targets:
    """Galaxy positions in frames, parsed once.

    Parameters
    ----------
    coords : `~astropy.coordinates.SkyCoord`
        One-dimensional array of positions.
    names : list of str
        One per position: the given name, or `target_name` of the position.
    half_light_radii : `~numpy.ndarray` or None
        Arcsec, when the table had such a column.
    """

    coords: SkyCoord
    names: list
    half_light_radii: np.ndarray | None = None

    def __len__(self):
        return len(self.coords)

    def radius(self, index):
        """Return the half-light radius of target ``index`` in arcsec, or None."""
        return None if self.half_light_radii is None else self.half_light_radii[index]


def target_name(coord):
    """Return the name of a galaxy known only by its position.

    Parameters
    ----------
    coord : `~astropy.coordinates.SkyCoord` or None

    Returns
    -------
    name : str
        ``J`` followed by RA and Dec in degrees, e.g. ``J200.50993+36.73092``;
        ``"galaxy"`` without a position.
    """
    if coord is None:
        return "galaxy"
    return f"J{coord.ra.deg:09.5f}{coord.dec.deg:+09.5f}"


def read_catalog(path):
    """Read a target catalogue file (csv, ecsv, FITS or any astropy table format).

    Parameters
    ----------
    path : str or `~pathlib.Path`

    Returns
    -------
    table : `~astropy.table.Table`

    Raises
    ------
    PicassoInputError
        If the file is missing or not a table astropy can read.
    """
    path = Path(path)
    if not path.is_file():
        msg = f"{path}: no such catalogue file; check the path"
        raise PicassoInputError(msg)
    formats = {".csv": "ascii.csv", ".ecsv": "ascii.ecsv", ".txt": "ascii"}
    try:
        return Table.read(path, format=formats.get(path.suffix.lower()))
    except Exception as exc:  # astropy raises many types for unreadable tables
        msg = f"{path}: cannot read the catalogue ({exc}); give csv, ecsv or FITS"
        raise PicassoInputError(msg) from None


def _column(table, candidates):
    columns = {c.lower(): c for c in table.colnames}
    return next((columns[c] for c in candidates if c in columns), None)


def _angles(column, key):
    """Return a column as angles: numbers in degrees, or sexagesimal strings."""
    if getattr(column, "unit", None) is not None:
        return column.quantity
    values = np.asarray(column)
    if values.dtype.kind in "US":
        text = [str(v).strip() for v in values]
        sexagesimal = any(":" in v or " " in v or "h" in v for v in text)
        unit = u.hourangle if (key == "ra" and sexagesimal) else u.deg
        return Angle(text, unit=unit)
    return values.astype(float) * u.deg


def _check_rows(ra, dec, names):
    """Name the rows whose coordinates are not on the sky."""
    bad = ~np.isfinite(ra.to_value(u.deg)) | ~np.isfinite(dec.to_value(u.deg))
    bad |= np.abs(np.nan_to_num(dec.to_value(u.deg))) > 90
    if bad.any():
        rows = [
            f"row {i} ({names[i] if names else 'unnamed'}: "
            f"ra={ra[i]:.5g}, dec={dec[i]:.5g})"
            for i in np.flatnonzero(bad)[:5]
        ]
        more = f" and {bad.sum() - 5} more" if bad.sum() > 5 else ""
        msg = (
            f"the target table has coordinates off the sky: {'; '.join(rows)}{more}; "
            "dec must lie within -90 and 90 degrees and both must be numbers "
            "(degrees) or sexagesimal strings"
        )
        raise PicassoInputError(msg)


def parse_targets(targets):
    """Turn the ``targets`` users pass into `Targets`.

    Parameters
    ----------
    targets : `~astropy.coordinates.SkyCoord`, `~astropy.table.Table` or path
        Positions, a table with ``ra`` and ``dec`` (degrees; optional ``name``
        and ``half_light_radius`` in arcsec or ``petroR50_r``), or a
        catalogue file holding such a table.

    Returns
    -------
    targets : `Targets`

    Raises
    ------
    PicassoInputError
        For a table without ra/dec, coordinates that are not numbers, or a
        catalogue that cannot be read.
    """
    if isinstance(targets, Targets):
        return targets
    if isinstance(targets, str | Path):
        targets = read_catalog(targets)
    if isinstance(targets, SkyCoord):
        coords = targets.reshape((1,)) if targets.isscalar else targets.ravel()
        return Targets(coords, [target_name(c) for c in coords])
    if not isinstance(targets, Table):
        msg = (
            "targets must be a SkyCoord, an astropy Table with ra/dec columns or a "
            f"catalogue file, not {type(targets).__name__}"
        )
        raise PicassoInputError(msg)
    ra_col, dec_col = _column(targets, ("ra",)), _column(targets, ("dec",))
    if ra_col is None or dec_col is None:
        msg = (
            "the target table needs ra and dec columns (degrees); "
            f"it has {', '.join(targets.colnames) or 'none'}: name the columns "
            "of the positions ra and dec"
        )
        raise PicassoInputError(msg)
    if len(targets) == 0:
        msg = "the target table has no rows; give at least one galaxy"
        raise PicassoInputError(msg)
    name_col = _column(targets, NAME_COLUMNS)
    try:
        ra = _angles(targets[ra_col], "ra")
        dec = _angles(targets[dec_col], "dec")
    except (ValueError, TypeError, u.UnitsError) as exc:
        msg = (
            f"the target table's {ra_col}/{dec_col} are neither numbers in degrees "
            f"nor sexagesimal strings ({exc}); fix those columns"
        )
        raise PicassoInputError(msg) from None
    _check_rows(ra, dec, [str(v) for v in targets[name_col]] if name_col else None)
    coords = SkyCoord(ra, dec).reshape((len(targets),))
    names = [
        str(targets[name_col][i]) if name_col else target_name(coords[i])
        for i in range(len(coords))
    ]
    radius_col = _column(targets, RADIUS_COLUMNS)
    radii = None
    if radius_col is not None:
        column = targets[radius_col]
        radii = (
            column.quantity.to_value(u.arcsec)
            if getattr(column, "unit", None) is not None
            else np.asarray(column, dtype=float)
        )
    return Targets(coords, names, radii)
