import numpy as np
import pytest

from picasso_astro.exceptions import PicassoInputError
from picasso_astro.images import BANDS, BandImage
from picasso_astro.preprocess import stack_bands, to_model_input
from picasso_astro.properties import PROPERTIES
from picasso_astro.training.mocks import (
    MEASURED_FIELDS,
    galaxy_seed,
    make_mock,
    measure_sky_noise,
    mock_sky_noise,
)
from picasso_astro.training.mocks import _galaxy as gal
from picasso_astro.training.mocks import _relations as rel
from picasso_astro.training.mocks._sps import load_sps_table

NAMES = list(PROPERTIES)


@pytest.fixture(scope="module")
def mock():
    return make_mock(galaxy_seed(7, 0), size=64)


def test_mock_is_band_images_through_preprocessing(mock):
    assert set(mock.images) == set(BANDS)
    for band, image in mock.images.items():
        assert isinstance(image, BandImage)
        assert image.band == band
        assert image.shape == (64, 64)
        assert image.noise.shape == (64, 64)
        assert np.all(image.noise > 0)
        assert image.psf.sum() == pytest.approx(1.0, rel=1e-5)
        assert image.psf_fwhm > 0.5
    cube, mask = stack_bands(mock.images)
    x = to_model_input(cube, mask)
    assert x.shape == (6, 64, 64)
    assert np.isfinite(x).all()


def test_truth_shapes_ranges_and_validity(mock):
    assert mock.truth.shape == (len(PROPERTIES), 64, 64)
    assert mock.truth.dtype == np.float32
    assert mock.truth_valid.dtype == bool
    for index, prop in enumerate(PROPERTIES.values()):
        values = mock.truth[index]
        assert values.min() >= prop.edges[0]
        assert values.max() <= prop.edges[-1]
        # invalid pixels hold the documented fill: the lowest bin edge
        assert np.all(values[~mock.truth_valid[index]] == np.float32(prop.edges[0]))
    # the galaxy centre has stars, so every stellar property is valid there
    for name in ("stellar_mass", "stellar_metallicity", "stellar_age"):
        assert mock.truth_valid[NAMES.index(name), 32, 32]


def test_deterministic_for_a_seed():
    a = make_mock(galaxy_seed(3, 5), size=32)
    b = make_mock(galaxy_seed(3, 5), size=32)
    c = make_mock(galaxy_seed(3, 6), size=32)
    np.testing.assert_array_equal(a.images["r"].data, b.images["r"].data)
    np.testing.assert_array_equal(a.truth, b.truth)
    assert a.params == pytest.approx(b.params, nan_ok=True)
    assert not np.array_equal(a.images["r"].data, c.images["r"].data)


@pytest.mark.parametrize("quenched", [0.0, 1.0])
def test_truth_integrates_to_galaxy_totals(quenched):
    overrides = {
        "kind": "normal",
        "log_mstar": 10.3,
        "redshift": 0.08,
        "companion": 0,
        "quenched": quenched,
        "log_sfr": 0.2 if not quenched else -0.8,
    }
    mock = make_mock(galaxy_seed(11, int(quenched)), size=256, overrides=overrides)
    p = mock.params
    area = p["kpc_per_pixel"] ** 2

    def total(name):
        index = NAMES.index(name)
        return np.log10(
            (10.0 ** mock.truth[index])[mock.truth_valid[index]].sum() * area
        )

    assert total("stellar_mass") == pytest.approx(p["log_mstar"], abs=0.02)
    assert total("sfr") == pytest.approx(p["log_sfr"], abs=0.03)
    assert total("hi") == pytest.approx(p["log_mhi"], abs=0.05)
    assert p["log_mstar_image"] == pytest.approx(p["log_mstar"], abs=0.01)


def test_truth_is_pixel_integrated_not_sampled():
    overrides = {
        "kind": "normal",
        "log_mstar": 10.8,
        "redshift": 0.12,
        "companion": 0,
        "bulge_fraction": 0.6,
        "log_re_bulge": -0.5,
        "sersic_n": 4.0,
    }
    mock = make_mock(galaxy_seed(5, 1), size=48, overrides=overrides)
    p = mock.params
    cx, cy = p["x_centre"], p["y_centre"]
    ix, iy = round(cx), round(cy)
    sps = load_sps_table()
    tables = sps.at_redshift(p["redshift"])
    host = {
        k: v for k, v in p.items() if k in gal.draw_galaxy(np.random.default_rng(0))
    }
    offsets = (np.arange(41) + 0.5) / 41 - 0.5
    sx, sy = np.meshgrid((ix + offsets - cx), (iy + offsets - cy))
    kpc = p["kpc_per_pixel"]
    fine = gal.galaxy_fields(host, sx * kpc, sy * kpc, sps, tables, r_max=100)
    centre = gal.galaxy_fields(
        host,
        np.array([ix - cx]) * kpc,
        np.array([iy - cy]) * kpc,
        sps,
        tables,
        r_max=100,
    )
    index = NAMES.index("stellar_mass")
    # young stars add a little mass; compare the old component via the truth
    integrated = np.log10(fine["mass_old"].mean())
    sampled = np.log10(centre["mass_old"][0])
    assert abs(sampled - integrated) > 0.1  # the cusp makes sampling wrong
    assert mock.truth[index, iy, ix] == pytest.approx(integrated, abs=0.02)


@pytest.mark.parametrize("field", list(MEASURED_FIELDS))
def test_mock_sky_noise_matches_measured_frames(field):
    measured = []
    for index in range(3):
        mock = make_mock(galaxy_seed(21, index), size=64, field=field)
        measured.append(mock_sky_noise(mock))
    mock_noise = np.median(measured, axis=0)
    real = np.array(MEASURED_FIELDS[field]["noise"])
    np.testing.assert_allclose(mock_noise, real, rtol=0.2)


def test_population_reproduces_input_relations():
    rng = np.random.default_rng(0)
    params = [gal.draw_galaxy(rng) for _ in range(4000)]
    log_m = np.array([p["log_mstar"] for p in params])
    log_sfr = np.array([p["log_sfr"] for p in params])
    quenched = np.array([p["quenched"] for p in params]).astype(bool)
    oh = np.array([p["oh_re"] for p in params])
    sf = ~quenched
    slope, intercept = np.polyfit(log_m[sf], log_sfr[sf], 1)
    scatter = np.std(log_sfr[sf] - (slope * log_m[sf] + intercept))
    assert slope == pytest.approx(0.76, abs=0.04)
    assert scatter == pytest.approx(rel.MAIN_SEQUENCE_SCATTER, abs=0.03)
    low, high = quenched[log_m < 9.5].mean(), quenched[log_m > 11].mean()
    assert low < 0.2 < 0.7 < high
    for lo in (9.0, 10.0, 11.0):
        sel = (log_m > lo) & (log_m < lo + 0.5)
        expected = rel.gas_metallicity_mzr(lo + 0.25)[0]
        assert np.median(oh[sel]) == pytest.approx(expected, abs=0.03)


def test_colour_bimodality():
    colours, quenched = [], []
    for index in range(40):
        mock = make_mock(
            galaxy_seed(4, index),
            size=32,
            overrides={"log_mstar": 10.6, "companion": 0},
        )
        colours.append(-2.5 * np.log10(mock.params["flux_g"] / mock.params["flux_r"]))
        quenched.append(mock.params["quenched"])
    colours, quenched = np.array(colours), np.array(quenched, dtype=bool)
    assert quenched.any()
    assert (~quenched).any()
    assert np.median(colours[quenched]) - np.median(colours[~quenched]) > 0.15


def test_hi_discs_extend_beyond_stars():
    rng = np.random.default_rng(1)
    params = [gal.draw_galaxy(rng) for _ in range(500)]
    ratio = [
        10 ** p["log_d_hi"] / 2 / 10 ** p["log_re_disc"]
        for p in params
        if not p["quenched"]
    ]
    assert np.min(ratio) >= 1.5 - 1e-9
    assert np.median(ratio) > 1.8


def test_bad_arguments():
    with pytest.raises(PicassoInputError, match="size"):
        make_mock(1, size=4)
    with pytest.raises(PicassoInputError, match="unknown field"):
        make_mock(1, size=32, field="nowhere")
    with pytest.raises(PicassoInputError, match="unknown parameter"):
        make_mock(1, size=32, overrides={"not_a_parameter": 1})
    with pytest.raises(PicassoInputError, match="seed"):
        make_mock(-3, size=32)


def _read_frame(path):
    from astropy.io import fits

    with fits.open(path) as hdul:
        return np.asarray(hdul[0].data, dtype=float)


@pytest.mark.shared_data
def test_measured_noise_constants_match_the_real_frames(shared_data):
    field = "004510-4-0030"
    real = []
    for band in BANDS:
        path = (
            shared_data / "sdss" / f"field-{field}" / f"frame-{band}-{field}.fits.bz2"
        )
        data = _read_frame(path)
        real.append(measure_sky_noise(data))
    np.testing.assert_allclose(real, MEASURED_FIELDS[field]["noise"], rtol=0.1)
    mock_noise = np.median(
        [
            mock_sky_noise(
                make_mock(
                    galaxy_seed(2, i), size=64, field=field, overrides={"redshift": 0.1}
                )
            )
            for i in range(3)
        ],
        axis=0,
    )
    np.testing.assert_allclose(mock_noise, real, rtol=0.2)


def test_emission_lines_follow_sfr_and_redshift():
    def lines(redshift, log_sfr, quenched):
        overrides = {
            "log_mstar": 10.0,
            "log_sfr": log_sfr,
            "quenched": quenched,
            "redshift": redshift,
            "companion": 0,
        }
        params = make_mock(galaxy_seed(9, 0), size=48, overrides=overrides).params
        return np.array([params[f"line_fraction_{b}"] for b in BANDS])

    near = lines(0.03, 0.3, 0.0)
    far = lines(0.12, 0.3, 0.0)
    passive = lines(0.03, -2.0, 1.0)
    # H-alpha moves from r to i between z = 0.03 and 0.12
    assert near[2] > 0.002
    assert near[3] < near[2]
    assert far[3] > 0.005
    assert far[2] < far[3]
    assert passive.max() < 0.2 * near.max()
