"""Pipe3D maps (Sanchez et al. 2016) in HDF5 tables, as edge-pydb ships them.

The EDGE-CALIFA database (Bolatto et al. 2017; the ``edge-pydb`` package)
stores Pipe3D products of CALIFA galaxies as astropy tables in one HDF5 file,
one row per pixel (``ix``, ``iy``, ``ra_abs``, ``dec_abs``), e.g.
``edge_pydb/img_califa/NGC4047_allpix.pipe3d.hdf5``. The pixel grid's WCS is
not stored; it is fitted to the pixels' sky positions.
"""

import re
from pathlib import Path

import numpy as np
from astropy.coordinates import SkyCoord
from astropy.wcs.utils import fit_wcs_from_points

from ..exceptions import PicassoInputError
from ._common import build_maps

__all__ = ["CALIFA_PSF_FWHM", "read_pipe3d"]

#: PSF FWHM of CALIFA V500 cubes in arcsec (Garcia-Benito et al. 2015, A&A
#: 576, A135: about 2.5 arcsec).
CALIFA_PSF_FWHM = 2.5

#: Salpeter to Chabrier stellar masses: x 0.61 (Madau & Dickinson 2014, ARA&A
#: 52, 415, section 3.1).
_SALPETER_TO_CHABRIER_MASS = np.log10(0.61)
#: edge-pydb multiplies the Kroupa H-alpha calibration of Calzetti et al.
#: (2010) by 1.51 for a Salpeter IMF; Kroupa and Chabrier agree to 0.03 dex.
_SALPETER_TO_KROUPA_SFR = -np.log10(1.51)

# Column, table and unit each property is read from (units as the tables state).
_COLUMNS = {
    "stellar_mass": ("SSP", "sigstar_Avcor", "solMass / pc2"),
    "stellar_mass_err": ("SSP", "fe_medflx", "fraction"),
    "stellar_age": ("SSP", "age_mwt", "dex(yr)"),
    "stellar_age_err": ("SSP", "e_age_lwt", "fraction"),
    "stellar_metallicity": ("SSP", "ZH_mwt", "dex"),
    "stellar_metallicity_err": ("SSP", "e_ZH_lwt", "fraction"),
    "sfr": ("flux_elines", "flux_sigsfr_corr", "solMass / (Gyr pc2)"),
    "sfr_err": ("flux_elines", "e_flux_sigsfr_corr", "solMass / (Gyr pc2)"),
    "gas_metallicity": ("flux_elines", "ZOH", "dex"),
    "gas_metallicity_err": ("flux_elines", "e_ZOH", "dex"),
    "bpt": ("flux_elines", "BPT", None),
}

# (Msun / pc^2 to Msun / kpc^2), (Msun / Gyr / pc^2 to Msun / yr / kpc^2).
_PC2_TO_KPC2 = 6.0
_GYR_PC2_TO_YR_KPC2 = -3.0

_UNIT_IN_META = re.compile(r"name: '?(?P<name>[^,']+)'?, unit: (?P<unit>[^,]+),")


def _open(path):
    try:
        import h5py
    except ImportError:
        msg = "Pipe3D HDF5 files need h5py: pip install 'picasso_astro[ifu]'"
        raise ImportError(msg) from None
    path = Path(path)
    if not path.is_file():
        msg = f"{path}: no such file; check the path"
        raise PicassoInputError(msg)
    try:
        return h5py.File(path, "r")
    except OSError as exc:
        msg = f"{path}: not a readable HDF5 file ({exc}); give a Pipe3D .hdf5 table"
        raise PicassoInputError(msg) from None


def _table(handle, name, source):
    if name not in handle:
        msg = (
            f"{source}: no {name!r} table (it has {', '.join(handle)}); give a "
            "Pipe3D file written by edge-pydb (*.pipe3d.hdf5)"
        )
        raise PicassoInputError(msg)
    rows = handle[name][:]
    units = {}
    meta_key = f"{name}.__table_column_meta__"
    if meta_key in handle:
        text = "\n".join(line.decode() for line in handle[meta_key][:])
        units = {m["name"]: m["unit"].strip() for m in _UNIT_IN_META.finditer(text)}
    return rows, units


def _column(tables, key, source):
    table, column, unit = _COLUMNS[key]
    rows, units = tables[table]
    if column not in (rows.dtype.names or ()):
        msg = f"{source}: the {table} table has no {column!r} column"
        raise PicassoInputError(msg)
    if unit is not None and column in units and units[column] != unit:
        msg = (
            f"{source}: {table}.{column} is in {units[column]}, not {unit} as "
            "Pipe3D writes it; convert it or give the file as edge-pydb wrote it"
        )
        raise PicassoInputError(msg)
    return np.asarray(rows[column], dtype=float)


def _grid(rows, source):
    """Pixel indices, shape and fitted TAN WCS of a table's rows."""
    ix, iy = np.asarray(rows["ix"], int), np.asarray(rows["iy"], int)
    shape = (int(iy.max()) + 1, int(ix.max()) + 1)
    coords = SkyCoord(
        np.asarray(rows["ra_abs"], float), np.asarray(rows["dec_abs"], float),
        unit="deg",
    )  # fmt: skip
    if len(ix) < 3:
        msg = f"{source}: too few pixels to place the maps on the sky"
        raise PicassoInputError(msg)
    wcs = fit_wcs_from_points((ix.astype(float), iy.astype(float)), coords)
    wcs.pixel_shape = shape[::-1]
    return ix, iy, shape, wcs


def _image(values, ix, iy, shape):
    image = np.full(shape, np.nan)
    image[iy, ix] = values
    return image


def read_pipe3d(path, *, imf="chabrier", psf_fwhm=CALIFA_PSF_FWHM, exclude_agn=True):
    """Read Pipe3D maps in an edge-pydb HDF5 file as truth maps.

    - ``stellar_mass``: dust-corrected stellar-mass surface density
      (``SSP.sigstar_Avcor``); its uncertainty is the continuum's fractional
      flux error (``fe_medflx``), the only one the table gives (no M/L error).
    - ``sfr``: H-alpha star formation with the Balmer-decrement correction
      (``flux_elines.flux_sigsfr_corr``, Calzetti et al. 2010 calibration);
      spaxels of BPT type LINER or Seyfert left out when ``exclude_agn``.
    - ``gas_metallicity``: ``ZOH``, O3N2 with Marino et al. (2013), as Pipe3D
      gives it (star-forming spaxels only).
    - ``stellar_metallicity`` and ``stellar_age``: mass-weighted
      ``ZH_mwt`` (log Z/Z_sun) and ``age_mwt``. Pipe3D gives errors of the
      luminosity-weighted values only; those are used. Where the age "error"
      column holds ``log10(age_mwt / Gyr)`` instead (edge-pydb 1.8.0), the
      age has no uncertainty (NaN) and ``meta["notes"]`` says so.

    Surface densities are those of the sky plane (no inclination
    correction), per kpc^2.

    Parameters
    ----------
    path : str or `~pathlib.Path`
        An edge-pydb ``*.pipe3d.hdf5`` file with ``SSP`` and ``flux_elines``
        tables.
    imf : {"chabrier", "salpeter"}
        Pipe3D's stellar masses and edge-pydb's SFRs assume a Salpeter IMF;
        ``"chabrier"`` (the default, as the package's mocks) scales masses by
        0.61 (Madau & Dickinson 2014) and SFRs by 1 / 1.51.
    psf_fwhm : float
        PSF FWHM of the maps in arcsec, recorded in ``meta``.
    exclude_agn : bool
        Leave BPT LINER and Seyfert spaxels out of ``sfr``.

    Returns
    -------
    maps : `~picasso_astro.maps.PropertyMaps`
    """
    if imf not in ("chabrier", "salpeter"):
        msg = f"imf must be 'chabrier' or 'salpeter', not {imf!r}"
        raise PicassoInputError(msg)
    source = str(path)
    with _open(path) as handle:
        tables = {name: _table(handle, name, source) for name in ("SSP", "flux_elines")}
    rows = tables["SSP"][0]
    ix, iy, shape, wcs = _grid(rows, source)
    if len(tables["flux_elines"][0]) != len(rows) or not np.array_equal(
        tables["flux_elines"][0]["ix"], rows["ix"]
    ):
        msg = f"{source}: the SSP and flux_elines tables hold different pixels"
        raise PicassoInputError(msg)
    column = {key: _column(tables, key, source) for key in _COLUMNS}

    chabrier = imf == "chabrier"
    notes = []
    with np.errstate(divide="ignore", invalid="ignore"):
        mass = np.log10(column["stellar_mass"]) + _PC2_TO_KPC2
        mass += _SALPETER_TO_CHABRIER_MASS if chabrier else 0.0
        mass_err = column["stellar_mass_err"] / np.log(10)
        sfr_linear = column["sfr"]
        sfr = np.log10(sfr_linear) + _GYR_PC2_TO_YR_KPC2
        sfr += _SALPETER_TO_KROUPA_SFR if chabrier else 0.0
        sfr_err = column["sfr_err"] / sfr_linear / np.log(10)
    age_err = column["stellar_age_err"]
    finite = np.isfinite(age_err) & np.isfinite(column["stellar_age"])
    if finite.any() and np.allclose(
        age_err[finite], column["stellar_age"][finite] - 9, atol=1e-4
    ):
        age_err = np.full_like(age_err, np.nan)
        notes.append(
            "SSP.e_age_lwt holds log10(age_mwt / Gyr), not an error: the "
            "stellar age has no uncertainty"
        )
    bpt = column["bpt"]
    sfr_valid = np.isfinite(sfr) & (sfr_linear > 0)
    if exclude_agn:
        sfr_valid &= ~(bpt >= 1)
    values = {
        "sfr": sfr,
        "gas_metallicity": column["gas_metallicity"],
        "stellar_metallicity": column["stellar_metallicity"],
        "stellar_mass": mass,
        "stellar_age": column["stellar_age"],
    }
    errors = {
        "sfr": sfr_err,
        "gas_metallicity": column["gas_metallicity_err"],
        "stellar_metallicity": column["stellar_metallicity_err"],
        "stellar_mass": mass_err,
        "stellar_age": age_err,
    }
    valid = {name: np.isfinite(value) for name, value in values.items()}
    valid["sfr"] = sfr_valid
    valid["stellar_mass"] &= column["stellar_mass"] > 0
    images = {name: _image(v, ix, iy, shape) for name, v in values.items()}
    error_images = {name: _image(v, ix, iy, shape) for name, v in errors.items()}
    valid_images = {
        name: _image(v, ix, iy, shape) > 0 for name, v in valid.items()
    }  # NaN (no row) compares False
    covered = _image(np.ones(len(ix)), ix, iy, shape) > 0
    covered &= np.isfinite(_image(column["stellar_mass"], ix, iy, shape)) | np.isfinite(
        _image(sfr_linear, ix, iy, shape)
    )
    imf_text = "Chabrier IMF (from Pipe3D's Salpeter)" if chabrier else "Salpeter IMF"
    calibrations = {
        "stellar_mass": f"Pipe3D SSP fit, dust-corrected (sigstar_Avcor), {imf_text}",
        "sfr": "H-alpha, Balmer-decrement dust correction (Cardelli et al. 1989), "
        "Calzetti et al. (2010) "
        + ("Kroupa IMF" if chabrier else "x 1.51 for a Salpeter IMF")
        + ("; LINER/Seyfert spaxels left out" if exclude_agn else ""),
        "gas_metallicity": "Marino et al. (2013) O3N2 (Pipe3D ZOH)",
        "stellar_metallicity": "Pipe3D mass-weighted [Z/H] (ZH_mwt)",
        "stellar_age": "Pipe3D mass-weighted log age (age_mwt)",
    }
    names = rows["Name"]
    galaxy = names[0].decode() if len(names) and isinstance(names[0], bytes) else ""
    meta = {
        "galaxy": galaxy or Path(source).name,
        "source": "Pipe3D (edge-pydb HDF5)",
        "inputs": [source],
        "psf_fwhm_arcsec": float(psf_fwhm),
        "imf": imf,
        "metallicity_calibration": calibrations["gas_metallicity"],
        "notes": notes,
        "n_spaxels": {name: int(v.sum()) for name, v in valid_images.items()},
    }
    values = {
        name: images[name]
        for name in (
            "sfr", "gas_metallicity", "stellar_metallicity", "stellar_mass",
            "stellar_age",
        )
    }  # fmt: skip
    return build_maps(
        values,
        error_images,
        valid_images,
        wcs=wcs,
        covered=covered,
        meta=meta,
        calibrations=calibrations,
    )
