"""IFU readers: MaNGA DAP MAPS and Pipe3D HDF5 files, synthetic and real."""

import astropy.units as u
import numpy as np
import pytest
from astropy.cosmology import Planck18
from astropy.io import fits
from ifu_helpers import (
    DONOTUSE,
    NOCOV,
    edge_pydb_file,
    write_fake_maps,
    write_fake_pipe3d,
)

from picasso_astro.exceptions import PicassoInputError
from picasso_astro.ifu import read_ifu, read_manga_maps, read_pipe3d
from picasso_astro.masks import MaskBit

try:
    import h5py  # noqa: F401

    HAS_H5PY = True
except ImportError:
    HAS_H5PY = False
needs_h5py = pytest.mark.skipif(not HAS_H5PY, reason="Pipe3D files need h5py")

SHAPE = (6, 7)
Z = 8993.8 / 299792.458  # the fake header's SCINPVEL / c


def _lines(**overrides):
    """Star-forming spaxels everywhere: Ha/Hb = 2.86, modest [NII] and [OIII]."""
    lines = {
        "Ha-6564": np.full(SHAPE, 10.0),
        "Hb-4862": np.full(SHAPE, 10.0 / 2.86),
        "NII-6585": np.full(SHAPE, 3.0),
        "OIII-5008": np.full(SHAPE, 2.0),
        "SII-6718": np.full(SHAPE, 1.0),
    }
    lines.update(overrides)
    return lines


def _expected_log_sigma_sfr(halpha, z=Z):
    """Kennicutt & Evans (2012) by hand: SFR per kpc^2 of a 0.5-arcsec spaxel."""
    d_l = Planck18.luminosity_distance(z).to_value(u.cm)
    sfr = 4 * np.pi * d_l**2 * halpha * 1e-17 / 10**41.27
    side = 0.5 * Planck18.kpc_proper_per_arcmin(z).to_value(u.kpc / u.arcmin) / 60
    return np.log10(sfr / side**2)


@pytest.fixture
def fake_maps(tmp_path):
    return write_fake_maps(tmp_path / "manga-1-2-MAPS.fits", _lines())


def test_sfr_without_dust_follows_the_calibration(fake_maps):
    maps = read_manga_maps(fake_maps)
    assert maps.names == ("sfr", "gas_metallicity")
    sfr = maps["sfr"]
    assert sfr.unit == u.dex(u.Msun / u.yr / u.kpc**2)
    assert np.allclose(sfr.data, _expected_log_sigma_sfr(10.0), atol=1e-4)
    # ivar 1e4: sigma 0.01 on a flux of 10, no decrement error below 2.86.
    assert np.allclose(sfr.uncertainty.array, 0.001 / np.log(10), rtol=1e-3)
    assert maps.meta["redshift"] == pytest.approx(Z)
    assert "Kennicutt & Evans (2012)" in maps.meta["calibrations"]["sfr"]
    assert maps.meta["psf_fwhm_arcsec"] == 2.5
    # The map's own WCS and physical pixel area.
    assert maps.wcs.celestial.wcs.ctype[0] == "RA---TAN"
    side = 0.5 * Planck18.kpc_proper_per_arcmin(Z).to_value(u.kpc / u.arcmin) / 60
    assert maps.meta["spaxel_area_kpc2"] == pytest.approx(side**2, rel=1e-4)


def test_balmer_decrement_corrects_dust(tmp_path):
    hbeta = np.full(SHAPE, 10.0 / 2.86)
    hbeta[0, 0] = 10.0 / 5.72  # twice the intrinsic decrement
    path = write_fake_maps(tmp_path / "m.fits", _lines(**{"Hb-4862": hbeta}))
    sfr = read_manga_maps(path)["sfr"].data
    # A(Ha) = 2.5 k(Ha) / (k(Hb) - k(Ha)) log10(2), Cardelli et al. (1989).
    a_halpha = 2.5 * 2.53 / (3.61 - 2.53) * np.log10(2)
    assert sfr[0, 0] - sfr[1, 1] == pytest.approx(0.4 * a_halpha, abs=1e-4)


def test_masks_low_sn_and_coverage(tmp_path):
    mask = np.zeros(SHAPE, int)
    mask[0, 0] = DONOTUSE
    mask[5, 6] = NOCOV | DONOTUSE
    ivar = np.full(SHAPE, 1e4)
    ivar[2, 3] = 0.01  # S/N 1 on H-alpha
    path = write_fake_maps(
        tmp_path / "m.fits", _lines(), mask={"Ha-6564": mask}, ivar={"Ha-6564": ivar}
    )
    maps = read_manga_maps(path)
    sfr = maps["sfr"]
    for pixel in ((0, 0), (5, 6), (2, 3)):
        assert sfr.mask[pixel]
        assert np.isnan(sfr.data[pixel])
    assert (~sfr.mask).sum() == SHAPE[0] * SHAPE[1] - 3
    assert maps.bitmask[5, 6] == MaskBit.OFF_IMAGE
    assert maps.bitmask[0, 0] == 0
    # Masks honoured by name: without DONOTUSE, the flagged spaxel counts.
    kept = read_manga_maps(path, mask_bits=("NOCOV",))["sfr"]
    assert not kept.mask[0, 0]
    with pytest.raises(PicassoInputError, match="unknown DAP mask bit"):
        read_manga_maps(path, mask_bits=("NOPE",))


def test_agn_spaxels_are_left_out(tmp_path):
    oiii = np.full(SHAPE, 2.0)
    nii = np.full(SHAPE, 3.0)
    oiii[1, 1], nii[1, 1] = 30.0, 12.0  # log [OIII]/Hb = 0.93, log [NII]/Ha = 0.08
    path = write_fake_maps(
        tmp_path / "m.fits", _lines(**{"OIII-5008": oiii, "NII-6585": nii})
    )
    maps = read_manga_maps(path)
    assert maps["sfr"].mask[1, 1] and maps["gas_metallicity"].mask[1, 1]
    assert not maps["sfr"].mask[2, 2]
    assert maps.meta["n_spaxels"]["agn_liner"] == 1


def test_composites_keep_sfr_unless_asked(tmp_path):
    oiii = np.full(SHAPE, 2.0)
    nii = np.full(SHAPE, 3.0)
    # log [NII]/Ha = -0.2, log [OIII]/Hb = 0.1: between Kauffmann+03 and Kewley+01.
    oiii[2, 2], nii[2, 2] = 10**0.1 * 10.0 / 2.86, 10**-0.2 * 10.0
    path = write_fake_maps(
        tmp_path / "m.fits", _lines(**{"OIII-5008": oiii, "NII-6585": nii})
    )
    maps = read_manga_maps(path)
    assert maps.meta["n_spaxels"]["composite"] == 1
    assert not maps["sfr"].mask[2, 2]
    assert maps["gas_metallicity"].mask[2, 2]  # calibrations hold for HII regions
    strict = read_manga_maps(path, exclude_composite=True)
    assert strict["sfr"].mask[2, 2] and not strict["sfr"].mask[3, 3]
    assert "composites" in strict.meta["calibrations"]["sfr"]


def test_oxygen_abundance_calibrations(fake_maps):
    o3n2 = np.log10((2.0 / (10.0 / 2.86)) / (3.0 / 10.0))
    n2 = np.log10(3.0 / 10.0)
    m13 = read_manga_maps(fake_maps)
    assert np.allclose(m13["gas_metallicity"].data, 8.533 - 0.214 * o3n2, atol=1e-5)
    assert "Marino et al. (2013)" in m13.meta["metallicity_calibration"]
    assert "Marino" in m13["gas_metallicity"].meta["calibration"]
    pp04 = read_manga_maps(fake_maps, calibration="PP04", indicators=("N2",))
    assert np.allclose(pp04["gas_metallicity"].data, 8.90 + 0.57 * n2, atol=1e-5)
    assert "Pettini & Pagel (2004) N2" in pp04.meta["metallicity_calibration"]
    with pytest.raises(PicassoInputError, match="calibration"):
        read_manga_maps(fake_maps, calibration="T04")


def test_n2_where_oiii_is_faint(tmp_path):
    oiii = np.full(SHAPE, 2.0)
    oiii[3, 3] = 0.001  # S/N 0.1: no O3N2, no BPT class; N2 = -0.52
    path = write_fake_maps(tmp_path / "m.fits", _lines(**{"OIII-5008": oiii}))
    oh = read_manga_maps(path)["gas_metallicity"]
    assert oh.data[3, 3] == pytest.approx(8.743 + 0.462 * np.log10(0.3), abs=1e-5)
    only = read_manga_maps(path, indicators=("O3N2",))["gas_metallicity"]
    assert only.mask[3, 3]


def test_channels_are_chosen_by_name(tmp_path):
    lines = _lines()
    lines["Ha-6564"] = np.full(SHAPE, 20.0)
    path = write_fake_maps(tmp_path / "m.fits", lines)
    with fits.open(path, mode="update") as hdulist:
        for ext in ("EMLINE_GFLUX", "EMLINE_GFLUX_IVAR", "EMLINE_GFLUX_MASK"):
            hdulist[ext].header["C05"] = "Ha-6563"  # another DAP version's name
    sfr = read_manga_maps(path)["sfr"].data
    # Ha doubled with Hb kept: more flux and a decrement of 5.72.
    assert np.nanmedian(sfr) > _expected_log_sigma_sfr(20.0)
    with fits.open(path, mode="update") as hdulist:
        hdulist["EMLINE_GFLUX"].header["C05"] = "Hx-1"
    with pytest.raises(PicassoInputError, match="no Ha-6564 channel"):
        read_manga_maps(path)


def test_redshift_sources(fake_maps, tmp_path):
    assert read_manga_maps(fake_maps, redshift=0.05).meta["redshift"] == 0.05
    table = fits.BinTableHDU.from_columns(
        [
            fits.Column(name="PLATE", format="J", array=[1, 1]),
            fits.Column(name="IFUDESIGN", format="J", array=[9, 2]),
            fits.Column(name="VEL", format="D", array=[100.0, 5995.8]),
        ]
    )
    drpall = tmp_path / "drp.fits"
    table.writeto(drpall)
    maps = read_manga_maps(fake_maps, drpall=drpall)
    assert maps.meta["redshift"] == pytest.approx(0.02, rel=1e-4)
    assert "VEL" in maps.meta["redshift_source"]
    with fits.open(fake_maps, mode="update") as hdulist:
        del hdulist[0].header["SCINPVEL"]
    with pytest.raises(PicassoInputError, match="no redshift"):
        read_manga_maps(fake_maps)


def test_flux_unit_is_checked(fake_maps):
    with fits.open(fake_maps, mode="update") as hdulist:
        hdulist["EMLINE_GFLUX"].header["BUNIT"] = "erg/s/cm^2/spaxel"
    with pytest.raises(PicassoInputError, match="as the DAP writes it"):
        read_manga_maps(fake_maps)


def test_not_a_maps_file(tmp_path):
    path = tmp_path / "image.fits"
    fits.PrimaryHDU(np.zeros((3, 3))).writeto(path)
    with pytest.raises(PicassoInputError, match="not a MaNGA DAP MAPS file"):
        read_ifu(path)
    with pytest.raises(PicassoInputError, match="no such file"):
        read_ifu(tmp_path / "missing.fits")


@pytest.mark.shared_data
def test_real_manga_maps(shared_data):
    """7815-3702: checked against the file by hand (see the docs' tutorial)."""
    path = shared_data / "manga" / "manga-7815-3702-MAPS-HYB10-GAU-MILESHC.fits.gz"
    drpall = shared_data / "manga" / "drpcomplete_v2_7_1.fits"
    maps = read_ifu(path, drpall=drpall)
    assert maps.meta["galaxy"] == "7815-3702"
    assert maps.meta["redshift"] == pytest.approx(8808.59193869 / 299792.458)
    assert maps.shape == (42, 42)
    assert maps.meta["psf_fwhm_arcsec"] == pytest.approx(2.59937)
    # One spaxel by hand from the raw extensions.
    with fits.open(path) as hdulist:
        header = hdulist["EMLINE_GFLUX"].header
        names = {str(header[f"C{k:02d}"]).strip(): k - 1 for k in range(1, 23)}
        flux = hdulist["EMLINE_GFLUX"].data
        ha, hb = flux[names["Ha-6564"], 21, 21], flux[names["Hb-4862"], 21, 21]
    decrement = max(ha / hb, 2.86)
    corrected = ha * (decrement / 2.86) ** (2.53 / (3.61 - 2.53))
    z = maps.meta["redshift"]
    d_l = Planck18.luminosity_distance(z).to_value(u.cm)
    side = 0.5 * Planck18.kpc_proper_per_arcmin(z).to_value(u.kpc / u.arcmin) / 60
    expected = np.log10(4 * np.pi * d_l**2 * corrected * 1e-17 / side**2) - 41.27
    assert maps["sfr"].data[21, 21] == pytest.approx(expected, abs=1e-4)
    total = maps.total("sfr", redshift=z).to_value(u.Msun / u.yr)
    assert 0.5 < total < 10
    oh = maps["gas_metallicity"]
    assert 8.3 < np.median(oh.data[~oh.mask]) < 8.8
    assert (~maps["sfr"].mask).sum() > 500


def _pipe3d_columns(shape):
    sigstar = np.full(shape, 100.0)  # M_sun / pc^2
    sigstar[0, 0] = np.nan
    age = np.full(shape, 9.5)
    return {
        "sigstar_Avcor": sigstar,
        "fe_medflx": np.full(shape, 0.05),
        "age_mwt": age,
        "e_age_lwt": np.full(shape, 0.1),
        "ZH_mwt": np.full(shape, -0.2),
        "e_ZH_lwt": np.full(shape, 0.15),
        "flux_sigsfr_corr": np.full(shape, 10.0),  # M_sun / Gyr / pc^2
        "e_flux_sigsfr_corr": np.full(shape, 1.0),
        "ZOH": np.full(shape, 8.5),
        "e_ZOH": np.full(shape, 0.03),
        "BPT": np.where(np.indices(shape)[0] == 1, 1.0, -1.0),
    }


@needs_h5py
def test_pipe3d_units_and_imf(tmp_path):
    shape = (5, 6)
    path = write_fake_pipe3d(
        tmp_path / "g.pipe3d.hdf5", _pipe3d_columns(shape), shape=shape
    )
    salpeter = read_pipe3d(path, imf="salpeter")
    assert set(salpeter.names) == {
        "sfr",
        "gas_metallicity",
        "stellar_metallicity",
        "stellar_mass",
        "stellar_age",
    }
    mass = salpeter["stellar_mass"]
    assert mass.unit == u.dex(u.Msun / u.kpc**2)
    assert mass.data[2, 2] == pytest.approx(8.0)  # 100 / pc^2 = 1e8 / kpc^2
    assert mass.mask[0, 0] and not mass.mask[2, 2]
    assert mass.uncertainty.array[2, 2] == pytest.approx(0.05 / np.log(10), rel=1e-5)
    sfr = salpeter["sfr"]
    assert sfr.data[2, 2] == pytest.approx(-2.0)  # 10 / Gyr / pc^2 = 1e-2 / yr / kpc^2
    assert sfr.uncertainty.array[2, 2] == pytest.approx(0.1 / np.log(10), rel=1e-5)
    assert sfr.mask[1].all()  # BPT LINER row
    assert not salpeter["gas_metallicity"].mask[1].any()
    chabrier = read_pipe3d(path)
    assert chabrier["stellar_mass"].data[2, 2] == pytest.approx(8.0 + np.log10(0.61))
    assert chabrier["sfr"].data[2, 2] == pytest.approx(-2.0 - np.log10(1.51))
    assert "Chabrier" in chabrier.meta["calibrations"]["stellar_mass"]
    assert chabrier.meta["galaxy"] == "FAKE1"
    assert chabrier["stellar_age"].uncertainty.array[2, 2] == pytest.approx(0.1)


@needs_h5py
def test_pipe3d_wcs_is_fitted_to_the_pixels(tmp_path):
    from ifu_helpers import ifu_wcs

    shape = (5, 6)
    wcs = ifu_wcs(shape, ra=10.0, dec=-30.0, scale_arcsec=1.0)
    path = write_fake_pipe3d(
        tmp_path / "g.hdf5", _pipe3d_columns(shape), shape=shape, wcs=wcs
    )
    maps = read_ifu(path)
    assert maps.shape == shape
    sky = wcs.pixel_to_world(4, 3)
    x, y = maps.wcs.world_to_pixel(sky)
    assert x == pytest.approx(4, abs=0.05) and y == pytest.approx(3, abs=0.05)


@needs_h5py
def test_pipe3d_bad_files(tmp_path):
    shape = (3, 3)
    columns = _pipe3d_columns(shape)
    path = write_fake_pipe3d(
        tmp_path / "g.hdf5",
        columns,
        shape=shape,
        units={"sigstar_Avcor": "solMass / kpc2"},
    )
    with pytest.raises(PicassoInputError, match="not solMass / pc2"):
        read_pipe3d(path)
    del columns["ZOH"]
    path = write_fake_pipe3d(tmp_path / "h.hdf5", columns, shape=shape)
    with pytest.raises(PicassoInputError, match="no 'ZOH' column"):
        read_pipe3d(path)
    with pytest.raises(PicassoInputError, match="imf"):
        read_pipe3d(path, imf="top-heavy")


@needs_h5py
def test_pipe3d_age_error_that_is_not_one(tmp_path):
    shape = (3, 3)
    columns = _pipe3d_columns(shape)
    columns["e_age_lwt"] = columns["age_mwt"] - 9
    path = write_fake_pipe3d(tmp_path / "g.hdf5", columns, shape=shape)
    maps = read_pipe3d(path)
    assert np.isnan(maps["stellar_age"].uncertainty.array).all()
    assert "e_age_lwt" in maps.meta["notes"][0]


@needs_h5py
@pytest.mark.skipif(
    edge_pydb_file() is None,
    reason="edge-pydb is not installed (pip install edge-pydb: NGC 4047's Pipe3D maps)",
)
def test_real_pipe3d_ngc4047():
    maps = read_ifu(edge_pydb_file())
    assert maps.meta["galaxy"] == "NGC4047"
    assert maps.shape == (72, 77)
    # 1-arcsec pixels on the sky.
    from astropy.wcs.utils import proj_plane_pixel_scales

    scales = proj_plane_pixel_scales(maps.wcs) * 3600
    assert np.allclose(scales, 1.0, atol=0.01)
    mass = maps["stellar_mass"]
    assert 7.0 < np.median(mass.data[~mass.mask]) < 9.5
    oh = maps["gas_metallicity"]
    assert 8.3 < np.median(oh.data[~oh.mask]) < 8.8
    total = maps.total("sfr", distance=47.1 * u.Mpc).to_value(u.Msun / u.yr)
    assert 0.5 < total < 20
