"""Synthetic IFU products for the tests: a small DAP MAPS file, a Pipe3D table."""

import importlib.util
from pathlib import Path

import numpy as np
from astropy.io import fits
from astropy.wcs import WCS

#: Channels of the fake EMLINE_GFLUX, deliberately not in the DAP's order.
FAKE_CHANNELS = ("NII-6585", "OIII-5008", "Hb-4862", "SII-6718", "Ha-6564")

DONOTUSE = 1 << 30
NOCOV = 1


def ifu_wcs(shape, *, ra=150.0, dec=2.0, scale_arcsec=0.5):
    """A north-up TAN WCS of ``shape`` (ny, nx) centred on (ra, dec)."""
    wcs = WCS(naxis=2)
    wcs.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    wcs.wcs.crval = [ra, dec]
    wcs.wcs.crpix = [(shape[1] + 1) / 2, (shape[0] + 1) / 2]
    wcs.wcs.cdelt = [-scale_arcsec / 3600, scale_arcsec / 3600]
    wcs.pixel_shape = shape[::-1]
    return wcs


def write_fake_maps(path, lines, *, ivar=None, mask=None, header=None, wcs=None):
    """Write a MaNGA-DAP-like MAPS file.

    Parameters
    ----------
    lines : dict of str to 2D array
        Flux per channel name of `FAKE_CHANNELS` (1e-17 erg/s/cm^2/spaxel).
    ivar, mask : dict of str to 2D array, optional
        Per channel; ivar 1e4 (S/N 100 at flux 1) and mask 0 by default.
    header : dict, optional
        Primary-header cards (PLATEIFU, SCINPVEL, RFWHM, ...).
    """
    shape = next(iter(lines.values())).shape
    wcs = wcs or ifu_wcs(shape)
    cube = np.stack([lines[name] for name in FAKE_CHANNELS]).astype(np.float32)
    ivars = np.stack(
        [(ivar or {}).get(name, np.full(shape, 1e4)) for name in FAKE_CHANNELS]
    ).astype(np.float32)
    masks = np.stack(
        [(mask or {}).get(name, np.zeros(shape, int)) for name in FAKE_CHANNELS]
    ).astype(np.int32)
    primary = fits.PrimaryHDU()
    primary.header.update(
        {"DAPFRMT": "MAPS", "PLATEIFU": "1-2", "PLATEID": 1, "IFUDSGN": 2,
         "SCINPVEL": 8993.8, "RFWHM": 2.5, "VERSDAP": "fake"}
    )  # fmt: skip
    primary.header.update(header or {})
    hdus = [primary]
    for suffix, data in (("", cube), ("_IVAR", ivars), ("_MASK", masks)):
        hdu = fits.ImageHDU(data, name="EMLINE_GFLUX" + suffix)
        hdu.header.update(wcs.to_header())
        for k, name in enumerate(FAKE_CHANNELS, start=1):
            hdu.header[f"C{k:02d}"] = name
        if not suffix:
            hdu.header["BUNIT"] = "1E-17 erg/s/cm^2/spaxel"
        hdus.append(hdu)
    fits.HDUList(hdus).writeto(path)
    return path


def write_fake_pipe3d(path, columns, *, shape, name="FAKE1", units=None, wcs=None):
    """Write an edge-pydb-like Pipe3D HDF5 file with SSP and flux_elines tables.

    ``columns`` maps a column name to a 2D array of ``shape``; every column
    is written to the table that holds it in real files.
    """
    import h5py

    ssp_columns = {
        "sigstar_Avcor", "fe_medflx", "age_mwt", "e_age_lwt", "ZH_mwt", "e_ZH_lwt",
    }  # fmt: skip
    wcs = wcs or ifu_wcs(shape, ra=180.7, dec=48.6, scale_arcsec=1.0)
    iy, ix = np.indices(shape)
    sky = wcs.pixel_to_world(ix.ravel(), iy.ravel())
    base = {
        "Name": np.array([name.encode()] * ix.size, dtype="S7"),
        "ix": ix.ravel().astype(np.int32),
        "iy": iy.ravel().astype(np.int32),
        "ra_abs": sky.ra.deg.astype(np.float32),
        "dec_abs": sky.dec.deg.astype(np.float32),
    }
    units = units or {}
    default_units = {
        "sigstar_Avcor": "solMass / pc2",
        "flux_sigsfr_corr": "solMass / (Gyr pc2)",
        "ZOH": "dex",
    }
    with h5py.File(path, "w") as handle:
        for table in ("SSP", "flux_elines"):
            chosen = {
                k: v
                for k, v in columns.items()
                if (k in ssp_columns) == (table == "SSP")
            }
            data = dict(base)
            data.update(
                {k: np.asarray(v, np.float32).ravel() for k, v in chosen.items()}
            )
            dtype = [(k, v.dtype) for k, v in data.items()]
            rows = np.zeros(ix.size, dtype=dtype)
            for key, value in data.items():
                rows[key] = value
            handle[table] = rows
            meta = ["datatype:"]
            for key in chosen:
                unit = units.get(key, default_units.get(key))
                if unit:
                    meta.append(f"- {{name: {key}, unit: {unit}, datatype: float32}}")
            handle[f"{table}.__table_column_meta__"] = np.array(
                [line.encode() for line in meta]
            )
    return path


def edge_pydb_file():
    """Path of NGC 4047's Pipe3D file in edge-pydb, or None when not installed.

    Found without importing edge_pydb (its import emits astropy
    deprecation warnings, which the tests turn into errors).
    """
    spec = importlib.util.find_spec("edge_pydb")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = (
        Path(next(iter(spec.submodule_search_locations)))
        / "img_califa"
        / "NGC4047_allpix.pipe3d.hdf5"
    )
    return path if path.is_file() else None
