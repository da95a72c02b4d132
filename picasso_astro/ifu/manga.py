"""MaNGA DAP ``MAPS`` files to truth maps: H-alpha star formation and O/H.

A DAP ``MAPS`` file (Westfall et al. 2019, AJ 158, 231) holds, per quantity,
a value extension with ``_IVAR`` and ``_MASK`` siblings; ``EMLINE_GFLUX``
holds Gaussian-fitted line fluxes in 1e-17 erg/s/cm^2 per spaxel, corrected
for Galactic but not internal extinction, one channel per line, named by the
``C01``, ``C02``, ... header cards. The DAP measures no stellar masses.
"""

import re

import astropy.units as u
import numpy as np
from astropy.constants import c
from astropy.io import fits

from .._fits_files import open_fits
from .._wcs import read_wcs
from ..exceptions import PicassoInputError
from ._common import build_maps, pixel_area_kpc2, resolve_cosmology
from ._lines import (
    METALLICITY_CALIBRATIONS,
    N2_STAR_FORMING,
    SFR_CALIBRATION,
    bpt_class,
    describe_metallicity,
    dust_corrected_halpha,
    log_n2,
    oxygen_abundance,
)

__all__ = ["DAP_MASK_BITS", "DEFAULT_MASK_BITS", "read_manga_maps"]

#: Bits of the DAP's ``MANGA_DAPPIXMASK`` (``_MASK`` extensions of MAPS files).
DAP_MASK_BITS = {
    "NOCOV": 0,
    "LOWCOV": 1,
    "DEADFIBER": 2,
    "FORESTAR": 3,
    "NOVALUE": 4,
    "UNRELIABLE": 5,
    "MATHERROR": 6,
    "FITFAILED": 7,
    "NEARBOUND": 8,
    "NOCORRECTION": 9,
    "MULTICOMP": 10,
    "DONOTUSE": 30,
}

#: The bits whose spaxels are left out: the DAP's own "do not use" and every
#: bit that says there is no trustworthy value.
DEFAULT_MASK_BITS = (
    "NOCOV",
    "LOWCOV",
    "DEADFIBER",
    "FORESTAR",
    "NOVALUE",
    "UNRELIABLE",
    "MATHERROR",
    "FITFAILED",
    "DONOTUSE",
)

#: Channel names of the lines used, as different DAP versions spell them.
_LINE_CHANNELS = {
    "Ha": ("Ha-6564", "Ha-6563"),
    "Hb": ("Hb-4862", "Hb-4861"),
    "NII": ("NII-6585", "NII-6584"),
    "OIII": ("OIII-5008", "OIII-5007"),
}

_FLUX_UNIT = 1e-17 * u.erg / u.s / u.cm**2
_FLUX_BUNIT = "1E-17 erg/s/cm^2/spaxel"
_CHANNEL_CARD = re.compile(r"^C(\d+)$")


def _channels(header, source):
    """Return ``{channel name: index}`` from the ``Cn`` cards of a header."""
    channels = {}
    for key in header:
        match = _CHANNEL_CARD.match(key)
        if match:
            channels[str(header[key]).strip()] = int(match.group(1)) - 1
    if not channels:
        msg = (
            f"{source}: EMLINE_GFLUX has no channel names (C01, C02, ... header "
            "cards); give a MaNGA DAP MAPS file as the DAP wrote it"
        )
        raise PicassoInputError(msg)
    return channels


def _check_flux_unit(header, source):
    """Refuse line fluxes in another unit than the DAP's (when BUNIT says)."""
    unit = header.get("BUNIT")
    if unit is None:
        return
    text = str(unit).replace(" ", "").lower()
    if text != _FLUX_BUNIT.replace(" ", "").lower():
        msg = (
            f"{source}: EMLINE_GFLUX is in {unit!r}, not {_FLUX_BUNIT!r} as the "
            "DAP writes it; give the MAPS file as the DAP wrote it"
        )
        raise PicassoInputError(msg)


def _line_index(channels, line, source):
    for name in _LINE_CHANNELS[line]:
        if name in channels:
            return channels[name]
    msg = (
        f"{source}: no {_LINE_CHANNELS[line][0]} channel in EMLINE_GFLUX (it has "
        f"{', '.join(channels)}); give a DAP MAPS file with Gaussian line fits"
    )
    raise PicassoInputError(msg)


def _mask_value(names):
    value = 0
    for name in names:
        try:
            value |= 1 << DAP_MASK_BITS[str(name).upper()]
        except KeyError:
            known = ", ".join(DAP_MASK_BITS)
            msg = f"unknown DAP mask bit {name!r}; the bits are {known}"
            raise PicassoInputError(msg) from None
    return value


def _extension(hdulist, name, source):
    if name not in hdulist:
        msg = (
            f"{source}: no {name} extension; not a MaNGA DAP MAPS file (give "
            "manga-PLATE-IFU-MAPS-*.fits.gz)"
        )
        raise PicassoInputError(msg)
    return hdulist[name]


def _redshift(header, redshift, drpall, source):
    """Return ``(z, where it came from)``."""
    if redshift is not None:
        return float(redshift), "given"
    if drpall is not None:
        return _redshift_from_table(drpall, header)
    velocity = header.get("SCINPVEL")
    if velocity is not None and float(velocity) > 0:
        z = (float(velocity) * u.km / u.s / c).decompose().value
        return z, "MAPS header SCINPVEL (cz of the target catalogue)"
    msg = (
        f"{source}: no redshift in the header (SCINPVEL); give redshift= or "
        "drpall= (a drpall or drpcomplete table holding the galaxy)"
    )
    raise PicassoInputError(msg)


def _redshift_from_table(path, header):
    plate, ifu = int(header.get("PLATEID", -1)), int(header.get("IFUDSGN", -1))
    try:
        with fits.open(path, memmap=False) as hdulist:
            table = hdulist[1].data
            names = [name.upper() for name in table.columns.names]
            rows = np.flatnonzero(
                (table["PLATE"] == plate) & (table["IFUDESIGN"] == ifu)
            )
            if not len(rows):
                msg = (
                    f"{path}: no row for plate-IFU {plate}-{ifu}; give the "
                    "drpall file of the galaxy's release, or redshift="
                )
                raise PicassoInputError(msg)
            row = table[rows[0]]
            for column in ("Z", "NSA_Z"):
                if column in names and float(row[column]) > 0:
                    return float(row[column]), f"{path} column {column}"
            if "VEL" in names and float(row["VEL"]) > 0:
                z = (float(row["VEL"]) * u.km / u.s / c).decompose().value
                return z, f"{path} column VEL (cz)"
    except (OSError, KeyError, IndexError, TypeError) as exc:
        msg = (
            f"{path}: cannot read a MaNGA target table ({exc}); give a drpall or "
            "drpcomplete FITS table with PLATE, IFUDESIGN and Z (or VEL) columns"
        )
        raise PicassoInputError(msg) from None
    msg = f"{path}: the galaxy's row has no positive redshift (Z, NSA_Z or VEL)"
    raise PicassoInputError(msg)


def read_manga_maps(
    path,
    *,
    redshift=None,
    drpall=None,
    cosmology=None,
    snr_min=3.0,
    calibration="M13",
    indicators=("O3N2", "N2"),
    mask_bits=DEFAULT_MASK_BITS,
    exclude_composite=False,
):
    """Read a MaNGA DAP ``MAPS`` file as truth maps of ``sfr`` and ``gas_metallicity``.

    Lines are read from ``EMLINE_GFLUX`` by channel name (H-alpha, H-beta,
    [NII] 6584, [OIII] 5007); a line counts in a spaxel when none of
    ``mask_bits`` is set, its inverse variance is positive and its S/N is at
    least ``snr_min``.

    - ``sfr``: H-alpha corrected for dust with the Balmer decrement
      (Cardelli et al. 1989 curve, intrinsic ratio 2.86), converted with
      Kennicutt & Evans (2012), ``log SFR = log L(Halpha) - 41.27`` (Kroupa
      IMF), ``L = 4 pi D_L^2 F``, and divided by the spaxel's physical area at
      the galaxy's redshift (``cosmology``). Needs H-alpha and H-beta; spaxels
      above the Kewley et al. (2001) line of the [NII] BPT diagram (AGN,
      LINER) are left out.
    - ``gas_metallicity``: 12 + log(O/H) from the first of ``indicators``
      that is measured, with ``calibration``, in spaxels classified
      star-forming (below Kauffmann et al. 2003), or, where [OIII] or H-beta
      are too faint to classify, with log([NII]/H-alpha) < -0.4.

    Parameters
    ----------
    path : str or `~pathlib.Path`
        A ``manga-PLATE-IFU-MAPS-*.fits[.gz]`` file.
    redshift : float, optional
        The galaxy's redshift. By default from ``drpall``, else from the
        header's ``SCINPVEL`` (the target catalogue's cz).
    drpall : str or `~pathlib.Path`, optional
        A drpall or drpcomplete table (columns ``PLATE``, ``IFUDESIGN`` and
        ``Z``, ``NSA_Z`` or ``VEL``).
    cosmology : `~astropy.cosmology.Cosmology`, optional
        For the distances; astropy's default (Planck18) unless given.
    snr_min : float
        Least S/N of a line to use it.
    calibration : {"M13", "PP04"}
        Marino et al. (2013, the default, as Pipe3D) or Pettini & Pagel (2004).
    indicators : sequence of {"O3N2", "N2"}
        Strong-line indices in order of preference.
    mask_bits : sequence of str
        DAP mask bits (`DAP_MASK_BITS`) whose spaxels are not used.
    exclude_composite : bool
        Also leave composite spaxels (between the Kauffmann et al. 2003 and
        Kewley et al. 2001 lines) out of ``sfr``.

    Returns
    -------
    maps : `~picasso_astro.maps.PropertyMaps`
        On the MAPS file's own grid and WCS, with per-map masks and 1-sigma
        uncertainties (dex) from the inverse variances; ``meta`` records the
        redshift and its source, the cosmology, the calibrations, the PSF
        FWHM (``psf_fwhm_arcsec``, the r-band reconstructed FWHM) and the
        spaxel counts.

    Raises
    ------
    PicassoInputError
        If the file is not a DAP MAPS file, lacks a line, or no redshift is
        known.
    """
    source = str(path)
    if (calibration, "N2") not in METALLICITY_CALIBRATIONS:
        msg = f"calibration must be 'M13' or 'PP04', not {calibration!r}"
        raise PicassoInputError(msg)
    indicators = tuple(indicators)
    if not indicators or any(name not in ("O3N2", "N2") for name in indicators):
        msg = f"indicators must be 'O3N2' and/or 'N2', not {indicators!r}"
        raise PicassoInputError(msg)
    bad_bits = _mask_value(mask_bits)
    cosmology = resolve_cosmology(cosmology)
    with open_fits(path) as hdulist:
        header = hdulist[0].header
        flux_hdu = _extension(hdulist, "EMLINE_GFLUX", source)
        ivar = _extension(hdulist, "EMLINE_GFLUX_IVAR", source).data
        mask = _extension(hdulist, "EMLINE_GFLUX_MASK", source).data
        flux = flux_hdu.data
        _check_flux_unit(flux_hdu.header, source)
        channels = _channels(flux_hdu.header, source)
        wcs = read_wcs(flux_hdu.header, source)
        lines, errors = {}, {}
        for line in _LINE_CHANNELS:
            k = _line_index(channels, line, source)
            with np.errstate(divide="ignore", invalid="ignore"):
                error = np.where(ivar[k] > 0, 1 / np.sqrt(ivar[k]), np.nan)
                usable = ((mask[k] & bad_bits) == 0) & np.isfinite(flux[k])
                usable &= flux[k] >= snr_min * error
            lines[line] = np.where(usable, flux[k], np.nan).astype(float)
            errors[line] = np.where(usable, error, np.nan).astype(float)
        covered = (mask[_line_index(channels, "Ha", source)] & 1) == 0
    z, z_source = _redshift(header, redshift, drpall, source)
    area = pixel_area_kpc2(wcs, z, cosmology)
    d_l = cosmology.luminosity_distance(z)

    halpha, log_err, a_halpha = dust_corrected_halpha(
        lines["Ha"], errors["Ha"], lines["Hb"], errors["Hb"]
    )
    factor = (4 * np.pi * d_l**2 * _FLUX_UNIT).to_value(u.erg / u.s)
    with np.errstate(divide="ignore", invalid="ignore"):
        log_sfr = (
            np.log10(halpha) + np.log10(factor) - SFR_CALIBRATION["log_c"]
        ) - np.log10(area)
    bpt = bpt_class(lines["OIII"], lines["Hb"], lines["NII"], lines["Ha"])
    excluded = bpt >= (1 if exclude_composite else 2)
    sfr_valid = np.isfinite(log_sfr) & ~excluded

    oh, oh_err, used = oxygen_abundance(
        lines, errors, calibration=calibration, indicators=indicators
    )
    with np.errstate(invalid="ignore"):
        faint_sf = log_n2(lines["NII"], lines["Ha"]) < N2_STAR_FORMING
    unclassified_sf = (bpt == -1) & faint_sf
    oh_valid = np.isfinite(oh) & ((bpt == 0) | unclassified_sf)

    metallicity_text = describe_metallicity(calibration, indicators)
    sfr_text = (
        f"H-alpha, Balmer-decrement dust correction (Cardelli et al. 1989, "
        f"R_V = 3.1, Ha/Hb = 2.86), {SFR_CALIBRATION['reference']}; AGN/LINER "
        f"spaxels (Kewley et al. 2001{' and composites' if exclude_composite else ''}"
        ") left out"
    )
    meta = {
        "galaxy": str(header.get("PLATEIFU", "")).strip() or source,
        "source": "MaNGA DAP MAPS",
        "inputs": [source],
        "dap_version": str(header.get("VERSDAP", "")),
        "dap_type": str(header.get("DAPTYPE", "")),
        "redshift": z,
        "redshift_source": z_source,
        "cosmology": getattr(cosmology, "name", None) or repr(cosmology),
        "spaxel_area_kpc2": area,
        "psf_fwhm_arcsec": _psf_fwhm(header),
        "snr_min": snr_min,
        "mask_bits": [str(name).upper() for name in mask_bits],
        "metallicity_calibration": metallicity_text,
        "metallicity_scatter_dex": {
            name: METALLICITY_CALIBRATIONS[(calibration, name)]["scatter"]
            for name in indicators
        },
        "n_spaxels": {
            "covered": int(covered.sum()),
            "sfr": int(sfr_valid.sum()),
            "agn_liner": int((bpt == 2).sum()),
            "composite": int((bpt == 1).sum()),
            "gas_metallicity": int(oh_valid.sum()),
            **{
                f"gas_metallicity_{name}": int(((used == k) & oh_valid).sum())
                for k, name in enumerate(indicators)
            },
        },
        "median_a_halpha_mag": float(np.nanmedian(a_halpha[sfr_valid]))
        if sfr_valid.any()
        else None,
    }
    return build_maps(
        {"sfr": log_sfr, "gas_metallicity": oh},
        {"sfr": log_err, "gas_metallicity": oh_err},
        {"sfr": sfr_valid, "gas_metallicity": oh_valid},
        wcs=wcs,
        covered=covered,
        meta=meta,
        calibrations={"sfr": sfr_text, "gas_metallicity": metallicity_text},
    )


def _psf_fwhm(header):
    """Return the r-band reconstructed PSF FWHM in arcsec (else g, i, z), or None."""
    for key in ("RFWHM", "GFWHM", "IFWHM", "ZFWHM"):
        value = header.get(key)
        if value is not None and float(value) > 0:
            return float(value)
    return None
