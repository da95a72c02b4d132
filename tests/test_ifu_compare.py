"""compare(): predicted maps against IFU maps on one grid and resolution."""

import astropy.units as u
import numpy as np
import pytest
from astropy.nddata import NDData, StdDevUncertainty
from click.testing import CliRunner
from ifu_helpers import ifu_wcs, write_fake_maps

from picasso_astro.cli import main
from picasso_astro.exceptions import AssumedPSFWarning, PicassoInputError
from picasso_astro.ifu import compare, read_manga_maps
from picasso_astro.maps import PropertyMaps
from picasso_astro.properties import get_property

SDSS_SHAPE = (96, 96)
IFU_SHAPE = (40, 40)


def _blob(wcs, shape, peak, width_arcsec):
    """log10 of a Gaussian surface density centred on the WCS's reference."""
    ny, nx = shape
    yy, xx = np.mgrid[0:ny, 0:nx]
    sky = wcs.pixel_to_world(xx, yy)
    centre = wcs.pixel_to_world((nx - 1) / 2, (ny - 1) / 2)
    r = sky.separation(centre).to_value(u.arcsec)
    return peak - 0.5 * (r / width_arcsec) ** 2 / np.log(10)


def _maps(values, sigma, wcs, *, names=("sfr",), meta=None, mask=None):
    stack = np.stack([values] * len(names))
    return PropertyMaps.from_arrays(
        stack, np.full_like(stack, sigma), mask, names=names, wcs=wcs, meta=meta
    )


def _ifu(values, sigma, wcs, fwhm, name="sfr"):
    prop = get_property(name)
    nd = NDData(
        values.astype(np.float32),
        uncertainty=StdDevUncertainty(np.full(values.shape, sigma, np.float32)),
        mask=~np.isfinite(values),
        wcs=wcs,
        unit=prop.unit,
    )
    return PropertyMaps({name: nd}, meta={"psf_fwhm_arcsec": fwhm, "source": "fake"})


def test_resampling_conserves_totals():
    sdss = ifu_wcs(SDSS_SHAPE, scale_arcsec=0.396)
    ifu = ifu_wcs(IFU_SHAPE, scale_arcsec=0.5)
    predicted = _maps(_blob(sdss, SDSS_SHAPE, -1.0, 3.0), 0.2, sdss)
    truth = _ifu(_blob(ifu, IFU_SHAPE, -1.0, 3.0), 0.05, ifu, 1.4)
    result = compare(predicted, truth, predicted_fwhm=1.4)
    assert result.meta["smoothed"] == "neither"
    before = predicted.total("sfr", distance=100 * u.Mpc)
    after = result.predicted.total("sfr", distance=100 * u.Mpc)
    # The IFU grid (20 arcsec) holds all but the blob's far wings.
    assert after.value == pytest.approx(before.value, rel=0.01)
    row = result.table[0]
    assert row["n_pixels"] == IFU_SHAPE[0] * IFU_SHAPE[1]
    assert abs(row["bias"].value) < 0.01


def test_bias_scatter_and_calibration_are_measured():
    wcs = ifu_wcs(IFU_SHAPE)
    rng = np.random.default_rng(1)
    truth_values = rng.uniform(-3, -1, IFU_SHAPE)
    noise = rng.normal(0, 0.1, IFU_SHAPE)
    predicted = _maps(truth_values + 0.3 + noise, 0.35, wcs)
    truth = _ifu(truth_values, 0.0, wcs, 2.5)
    row = compare(predicted, truth, predicted_fwhm=2.5).table[0]
    assert row["bias"].value == pytest.approx(0.3, abs=0.02)
    assert row["scatter"].value == pytest.approx(0.1, abs=0.01)
    assert row["inside_predicted"] > 0.6  # |0.3 + N(0, 0.1)| < 0.35: 69 %
    narrow = _maps(truth_values + 0.3 + noise, 0.1, wcs)
    assert compare(narrow, truth, predicted_fwhm=2.5).table[0]["inside_predicted"] < 0.1


def test_sharper_side_is_smoothed_to_the_coarser():
    wcs = ifu_wcs(IFU_SHAPE)
    values = np.full(IFU_SHAPE, -3.0)
    values[20, 20] = 0.0  # a point source in the predictions
    predicted = _maps(values, 0.1, wcs)
    truth = _ifu(np.full(IFU_SHAPE, -3.0), 0.1, wcs, 2.5)
    result = compare(predicted, truth, predicted_fwhm=1.5)
    assert result.meta["smoothed"] == "predicted"
    assert result.meta["kernel_fwhm_arcsec"] == pytest.approx(2.0)
    smoothed = result.predicted["sfr"].data
    assert smoothed[20, 20] < -0.5  # spread out ...
    linear = 10 ** smoothed.astype(float) - 1e-3
    assert linear.sum() == pytest.approx(1.0, rel=0.02)  # ... and conserved
    # The other way round the IFU side is smoothed.
    other = compare(predicted, truth, predicted_fwhm=3.5)
    assert other.meta["smoothed"] == "ifu"
    assert other.predicted["sfr"].data[20, 20] == pytest.approx(0.0, abs=1e-5)


def test_masks_limit_the_comparison():
    wcs = ifu_wcs(IFU_SHAPE)
    mask = np.zeros(IFU_SHAPE, bool)
    mask[:10] = True  # predicted maps masked here (a star, say)
    predicted = _maps(np.full(IFU_SHAPE, -2.0), 0.1, wcs, mask=mask)
    truth_values = np.full(IFU_SHAPE, -2.0)
    truth_values[:, :5] = np.nan  # no IFU coverage here
    result = compare(predicted, _ifu(truth_values, 0.1, wcs, 2.5), predicted_fwhm=2.5)
    assert result.table[0]["n_pixels"] == 30 * 35
    assert result.predicted["sfr"].mask[:10].all()


def test_bad_inputs():
    wcs = ifu_wcs(IFU_SHAPE)
    predicted = _maps(np.full(IFU_SHAPE, 8.5), 0.1, wcs, names=("gas_metallicity",))
    truth = _ifu(np.full(IFU_SHAPE, -2.0), 0.1, wcs, 2.5)
    with pytest.raises(PicassoInputError, match="share no property"):
        compare(predicted, truth, predicted_fwhm=2.0)
    with pytest.raises(PicassoInputError, match="cannot compare sfr"):
        compare(predicted, truth, names=["sfr"], predicted_fwhm=2.0)
    sfr = _maps(np.full(IFU_SHAPE, -2.0), 0.1, wcs)
    with pytest.warns(AssumedPSFWarning, match="record no PSF"):
        compare(sfr, truth)
    truth.meta.pop("psf_fwhm_arcsec")
    with pytest.raises(PicassoInputError, match="ifu_fwhm"):
        compare(sfr, truth, predicted_fwhm=1.0)
    far = ifu_wcs(IFU_SHAPE, ra=10.0)
    with pytest.raises(TypeError, match="PropertyMaps or a file name"):
        compare(sfr.to_hdulist(), truth)
    with pytest.raises(PicassoInputError, match="do not overlap the IFU's field"):
        compare(sfr, _ifu(np.full(IFU_SHAPE, -2.0), 0.1, far, 2.5), predicted_fwhm=2.0)


def _fake_manga(tmp_path, shape=IFU_SHAPE):
    lines = {
        "Ha-6564": np.full(shape, 10.0),
        "Hb-4862": np.full(shape, 10.0 / 2.86),
        "NII-6585": np.full(shape, 3.0),
        "OIII-5008": np.full(shape, 2.0),
        "SII-6718": np.full(shape, 1.0),
    }
    return write_fake_maps(tmp_path / "manga-1-2-MAPS.fits", lines)


def test_compare_command(tmp_path):
    pytest.importorskip("matplotlib")
    ifu_file = _fake_manga(tmp_path)
    truth = read_manga_maps(ifu_file)
    sdss = ifu_wcs(SDSS_SHAPE, scale_arcsec=0.396)
    values = np.stack(
        [np.full(SDSS_SHAPE, truth["sfr"].data[5, 5] + 0.2), np.full(SDSS_SHAPE, 8.6)]
    )
    predicted = PropertyMaps.from_arrays(
        values,
        np.full_like(values, 0.25),
        names=("sfr", "gas_metallicity"),
        wcs=sdss,
        meta={
            "galaxy": "1-2",
            "model": "tiny-test",
            "preprocessing": {"psf_fwhm_arcsec": {"r": 1.2, "u": 1.6}},
        },
    )
    maps_file = predicted.write(tmp_path / "pred.fits")
    result = CliRunner().invoke(
        main,
        [
            "compare", str(maps_file), str(ifu_file),
            "--plot", str(tmp_path / "c.png"), "--table", str(tmp_path / "c.ecsv"),
        ],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "sfr" in result.output and "gas_metallicity" in result.output
    assert "Marino et al. (2013)" in result.output
    assert "1.60 arcsec" in result.output  # the broadest band's PSF
    from astropy.table import QTable

    table = QTable.read(tmp_path / "c.ecsv")
    row = table[list(table["property"]).index("sfr")]
    assert row["bias"].to_value(u.dex) == pytest.approx(0.2, abs=0.01)
    assert (tmp_path / "c.png").stat().st_size > 1000
    bad = CliRunner().invoke(
        main, ["compare", str(maps_file), str(ifu_file), "--properties", "hi"]
    )
    assert bad.exit_code != 0 and "cannot compare hi" in bad.output


@pytest.mark.shared_data
def test_real_maps_written_read_and_compared_with_themselves(shared_data, tmp_path):
    path = shared_data / "manga" / "manga-7815-3702-MAPS-HYB10-GAU-MILESHC.fits.gz"
    truth = read_manga_maps(path)
    back = PropertyMaps.read(truth.write(tmp_path / "ifu.fits"))
    assert back.meta["calibrations"] == truth.meta["calibrations"]
    result = compare(back, path, predicted_fwhm=truth.meta["psf_fwhm_arcsec"])
    for row in result.table:
        assert row["n_pixels"] == (~truth[row["property"]].mask).sum()
        assert abs(row["bias"].value) < 1e-6 and row["scatter"].value < 1e-6
        assert row["inside_predicted"] == 1.0
