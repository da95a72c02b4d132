"""Mocks v2: rare kinds, redshift range, neighbours with truth, real skies."""

import numpy as np
import pytest
from astropy.io import fits
from astropy.wcs import WCS
from click.testing import CliRunner
from helpers import SHARED_DATA

from picasso_astro.exceptions import PicassoInputError
from picasso_astro.images import BANDS, PIXEL_SCALE
from picasso_astro.properties import PROPERTIES
from picasso_astro.training.cli import main as train_cli
from picasso_astro.training.dataset import ShardedDataset, ShardWriter, base_attrs
from picasso_astro.training.mocks import (
    KINDS,
    OWNER_CODES,
    POPULATIONS,
    SkyFrames,
    galaxy_seed,
    make_mock,
    mock_record,
    write_mock_dataset,
)
from picasso_astro.training.mocks import _core as core
from picasso_astro.training.mocks._kinds import draw_kind
from picasso_astro.training.mocks._observe import owner_map

NAMES = list(PROPERTIES)
MASS = NAMES.index("stellar_mass")


def _mock(kind, index=0, size=64, **overrides):
    return make_mock(
        galaxy_seed(31, index), size=size, overrides={"kind": kind, **overrides}
    )


@pytest.mark.parametrize("kind", KINDS)
def test_kind_is_recorded(kind):
    params = _mock(kind, size=32).params
    assert params["kind"] == KINDS.index(kind)
    flags = {name: params[f"is_{name}"] for name in KINDS[1:]}
    assert sum(flags.values()) == (0 if kind == "normal" else 1)
    if kind != "normal":
        assert flags[kind] == 1


def test_unknown_kind_and_population_are_refused():
    with pytest.raises(PicassoInputError, match="unknown kind"):
        make_mock(1, size=32, overrides={"kind": "quasar"})
    with pytest.raises(PicassoInputError, match="unknown population"):
        make_mock(1, size=32, population="weird")


@pytest.mark.parametrize("population", list(POPULATIONS))
def test_kind_rates_follow_the_population(population):
    rng = np.random.default_rng(0)
    drawn = [draw_kind(rng, population) for _ in range(20000)]
    for kind, share in POPULATIONS[population].items():
        rate = drawn.count(kind) / len(drawn)
        assert rate == pytest.approx(share, abs=4 * np.sqrt(share / len(drawn)))


def test_starbursts_reach_hundreds_and_are_dusty():
    sfr, loss_u = [], []
    for i in range(12):
        p = _mock("starburst", i, size=48).params
        sfr.append(p["log_sfr"])
        loss_u.append(-2.5 * np.log10(p["flux_u"] / p["flux_nodust_u"]))
    assert max(sfr) > 2.0  # above 100 M_sun/yr
    assert min(sfr) > 0.0
    normal = [_mock("normal", i, size=48, quenched=0.0) for i in range(12)]
    normal_loss = [
        -2.5 * np.log10(m.params["flux_u"] / m.params["flux_nodust_u"]) for m in normal
    ]
    assert np.median(loss_u) > np.median(normal_loss) + 1.0


def test_patchy_screen_has_mean_one_and_the_asked_scatter():
    rng = np.random.default_rng(3)
    screen = core._patchy_screen(rng, (256, 256), 0.5, 1.0)
    assert screen.mean() == pytest.approx(1.0, abs=0.1)
    assert np.std(np.log10(screen)) == pytest.approx(0.5, rel=0.05)


def test_compact_early_types_reach_high_central_density():
    peaks = [
        _mock("compact", i, size=48, redshift=0.03).truth[MASS].max() for i in range(6)
    ]
    assert np.median(peaks) >= 10.5
    p = _mock("compact", 0, size=32).params
    assert p["quenched"] == 1 and p["sersic_n"] >= 4 and p["bulge_fraction"] >= 0.7


def test_agn_adds_a_point_source_and_leaves_the_truth():
    with_agn = _mock("agn", 2, size=64, agn_fraction=0.5, redshift=0.05)
    without = _mock("agn", 2, size=64, agn_fraction=0.0, redshift=0.05)
    np.testing.assert_array_equal(with_agn.truth, without.truth)
    p = with_agn.params
    assert p["agn_flux_r"] == pytest.approx(0.5 * p["flux_r"])
    assert p["agn_flux_u"] < p["agn_flux_r"] < p["agn_flux_z"]  # f_nu ~ nu^-0.44
    ix, iy = round(p["x_centre"]), round(p["y_centre"])
    centre = (slice(iy - 2, iy + 3), slice(ix - 2, ix + 3))
    excess = with_agn.images["r"].data[centre].sum()
    excess -= without.images["r"].data[centre].sum()
    assert excess > 0.3 * p["agn_flux_r"]
    assert without.params["agn_flux_r"] == 0


def test_mergers_have_two_nuclei_tails_and_truth_for_both():
    mock = _mock("merger", 4, size=128, redshift=0.05)
    p = mock.params
    assert p["companion"] == 1 and p["tail_fraction"] > 0
    assert p["companion_log_mstar"] >= p["log_mstar"] - 0.6
    separation = np.hypot(
        p["companion_x_centre"] - p["x_centre"], p["companion_y_centre"] - p["y_centre"]
    )
    assert separation * p["kpc_per_pixel"] <= 2.0 * 10 ** p["log_re_disc"] + 1e-6
    assert len(mock.extras["tails"]) > 0
    cx, cy = round(p["companion_x_centre"]), round(p["companion_y_centre"])
    if 0 <= cx < 128 and 0 <= cy < 128:
        assert mock.truth_valid[MASS, cy, cx]
        assert mock.owner[cy, cx] in (OWNER_CODES["target"], OWNER_CODES["other"])


def test_tails_hold_their_share_of_the_mass():
    mock = _mock("merger", 5, size=256, redshift=0.1, companion=0)
    p = mock.params
    area = p["kpc_per_pixel"] ** 2
    total = (10.0 ** mock.truth[MASS])[mock.truth_valid[MASS]].sum() * area
    # Young stars and tails that leave the image make up the difference.
    assert np.log10(total) == pytest.approx(p["log_mstar"], abs=0.05)


def test_redshift_range_dimming_and_angular_scale():
    from astropy.cosmology import Planck18

    near = _mock("normal", 6, size=48, redshift=0.02, companion=0)
    far = _mock("normal", 6, size=48, redshift=0.24, companion=0)
    for mock in (near, far):
        z = mock.params["redshift"]
        scale = Planck18.kpc_proper_per_arcmin(z).value / 60 * PIXEL_SCALE
        assert mock.params["kpc_per_pixel"] == pytest.approx(scale, rel=0.01)
    # Surface brightness per kpc^2 without dust falls as (1+z)^4 up to the
    # k-correction (under a magnitude in r over this range).
    sb = [
        m.params["flux_nodust_r"] * m.params["kpc_per_pixel"] ** 2 for m in (near, far)
    ]
    dimming = 2.5 * np.log10(sb[0] / sb[1])
    expected = 10 * np.log10(1.24 / 1.02)
    assert dimming == pytest.approx(expected, abs=0.5)
    with pytest.raises(PicassoInputError, match="outside"):
        _mock("normal", size=32, redshift=0.3)


@pytest.fixture
def crowded(monkeypatch):
    monkeypatch.setattr(core, "NEIGHBOUR_DENSITY", 2.0e5)


def test_neighbours_have_their_own_truth(crowded):
    mock = _mock("normal", 7, size=96, redshift=0.03, companion=0)
    assert mock.params["n_truth_neighbours"] > 0
    assert mock.neighbour_truth.shape == mock.truth.shape
    neighbour = mock.owner == OWNER_CODES["neighbour"]
    assert neighbour.any()
    assert mock.neighbour_truth_valid[MASS][neighbour].mean() > 0.9
    assert mock.contaminant[neighbour].all()
    # The target's truth is not painted on neighbours: it stays the target's.
    below = mock.truth[MASS][neighbour] < mock.neighbour_truth[MASS][neighbour]
    assert below.mean() > 0.9


def test_owner_map_codes():
    target = np.array([[5.0, 0.0, 0.0, 0.1]])
    neighbour = np.array([[1.0, 3.0, 0.0, 0.0]])
    other = np.array([[0.0, 0.0, 2.0, 0.0]])
    owner = owner_map(target, neighbour, other, 0.5)
    assert owner.tolist() == [[1, 2, 3, 0]]


def test_shards_store_neighbours_and_old_shards_still_read(tmp_path, crowded):
    mock = _mock("normal", 7, size=48, redshift=0.03)
    record = mock_record(mock, 0)
    new = tmp_path / "new"
    write_mock_dataset(new, 2, seed=3, size=48, shard_size=2, progress=False)
    item = ShardedDataset(new)[1]
    assert item["owner"].dtype == np.uint8
    assert item["neighbour_truth"].shape == item["truth"].shape
    # A format-1 shard (no optional arrays) reads as before.
    old = tmp_path / "old"
    old.mkdir()
    (old / "dataset.json").write_text('{"kind": "other", "format_version": 1}')
    attrs = dict(base_attrs(), kind="other", format_version=1, count=1)
    with ShardWriter(
        old / "shard-00000.h5", 1, (48, 48), list(record["params"]), attrs=attrs
    ) as writer:
        writer.write(0, record)
    item = ShardedDataset(old)[0]
    assert "owner" not in item and "neighbour_truth" not in item
    np.testing.assert_array_equal(item["truth"], mock.truth)


def _write_frame(path, band, rng, shape=(400, 360)):
    """A small synthetic SDSS corrected frame with a few stars."""
    ny, nx = shape
    image = rng.normal(0.0, 0.03, shape)
    yy, xx = np.mgrid[:ny, :nx]
    for x, y in ((60, 60), (300, 80), (180, 330)):
        image += 20 * np.exp(-((yy - y) ** 2 + (xx - x) ** 2) / (2 * 1.5**2))
    wcs = WCS(naxis=2)
    wcs.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    wcs.wcs.crval = [150.0, 2.0]
    wcs.wcs.crpix = [nx / 2 + 0.5, ny / 2 + 0.5]
    wcs.wcs.cd = [[0, PIXEL_SCALE / 3600], [PIXEL_SCALE / 3600, 0]]
    header = wcs.to_header()
    header.update(FILTER=band, RUN=94, CAMCOL=1, FRAME=12, NMGY=0.005)
    calib = np.full(nx, 0.005, np.float32)
    grid = np.full((8, 6), 100.0, np.float32)
    sky = fits.BinTableHDU.from_columns(
        [
            fits.Column("ALLSKY", f"{grid.size}E", dim="(6,8)", array=[grid]),
            fits.Column(
                "XINTERP", f"{nx}E", array=[np.linspace(-0.5, 5.5, nx, dtype="f4")]
            ),
            fits.Column(
                "YINTERP", f"{ny}E", array=[np.linspace(-0.5, 7.5, ny, dtype="f4")]
            ),
        ]
    )
    astrometry = fits.BinTableHDU.from_columns([fits.Column("RUN", "J", array=[94])])
    fits.HDUList(
        [
            fits.PrimaryHDU(image.astype(np.float32), header=header),
            fits.ImageHDU(calib),
            sky,
            astrometry,
        ]
    ).writeto(path)


@pytest.fixture
def synthetic_frames(tmp_path):
    folder = tmp_path / "frames"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for band in BANDS:
        _write_frame(folder / f"frame-{band}-000094-1-0012.fits", band, rng)
    return folder


def test_real_sky_injection_on_synthetic_frames(synthetic_frames, monkeypatch):
    monkeypatch.setattr(core, "NEIGHBOUR_DENSITY", 0.0)
    sky = SkyFrames(synthetic_frames)
    overrides = {"kind": "normal", "companion": 0, "redshift": 0.1}
    mock = make_mock(galaxy_seed(2, 0), size=64, sky=sky, overrides=overrides)
    p = mock.params
    assert p["real_sky"] == 1 and p["n_stars"] == 0
    x0, y0 = int(p["sky_x0"]), int(p["sky_y0"])
    field = sky.field(0)
    real = field.frames["r"].data[y0 : y0 + 64, x0 : x0 + 64]
    added = mock.images["r"].data - real
    # The mock's light is what was added, with its own photon noise only.
    assert added.sum() == pytest.approx(p["flux_r"], rel=0.1, abs=1.0)
    assert np.std(added[:8, :8]) < 0.5 * np.std(real[:8, :8]) + 0.01
    # Real sources in the patch are contaminants, owned by "other".
    sources = field.sources[y0 : y0 + 64, x0 : x0 + 64]
    assert mock.contaminant[sources].all()
    assert np.all(mock.owner[sources] == OWNER_CODES["other"])
    # The patch centre was blank.
    assert not sources[28:36, 28:36].any()
    assert p["sky_noise_r"] == pytest.approx(0.03, rel=0.2)


def test_real_sky_refuses_a_directory_without_frames(tmp_path):
    with pytest.raises(PicassoInputError):
        SkyFrames(tmp_path)


def test_cli_population_and_sky_frames(tmp_path, synthetic_frames):
    out = tmp_path / "set"
    result = CliRunner().invoke(
        train_cli,
        [
            "mocks",
            "--n",
            "2",
            "--size",
            "32",
            "-o",
            str(out),
            "--population",
            "shift",
            "--sky-frames",
            str(synthetic_frames),
            "--quiet",
        ],
    )
    assert result.exit_code == 0, result.output
    data = ShardedDataset(out)
    assert data.attrs["population"] == "shift"
    assert data.attrs["sky_frames"] == str(synthetic_frames.resolve())
    assert data[0]["params"]["real_sky"] == 1


@pytest.mark.skipif(
    not (SHARED_DATA / "sdss").is_dir(),
    reason="real SDSS frames in ../shared/data/sdss are not available",
)
def test_real_sky_on_real_frames():
    sky = SkyFrames(SHARED_DATA / "sdss" / "field-004510-4-0030")
    mock = make_mock(galaxy_seed(4, 1), size=64, sky=sky)
    p = mock.params
    # The real frame's own sky noise (validate_mocks measured 0.0234 in r).
    assert p["sky_noise_r"] == pytest.approx(0.0234, rel=0.25)
    assert 0.7 < p["seeing_r"] < 2.5
    assert np.isfinite(mock.images["r"].data).all()


def test_shift_preset_observes_worse():
    seeing = {"default": [], "shift": []}
    noise = {"default": [], "shift": []}
    for population in seeing:
        for i in range(8):
            p = make_mock(
                galaxy_seed(8, i),
                size=32,
                population=population,
                field="004510-4-0030",
            ).params
            seeing[population].append(p["seeing_r"])
            noise[population].append(p["sky_noise_r"])
    assert np.median(seeing["shift"]) > 1.1 * np.median(seeing["default"])
    ratio = np.median(noise["shift"]) / np.median(noise["default"])
    assert ratio == pytest.approx(1.3, rel=0.1)


def test_hi_fractions_follow_catinella_at_every_mass():
    from picasso_astro.training.mocks import _galaxy as gal
    from picasso_astro.training.mocks import _relations as rel

    rng = np.random.default_rng(5)
    for mid in (9.25, 10.25, 11.0):
        fractions = []
        for _ in range(1500):
            p = gal.draw_galaxy(rng, rng.uniform(mid - 0.2, mid + 0.2))
            fractions.append(p["log_mhi"] - p["log_mstar"])
        median = np.median(fractions)
        assert median == pytest.approx(rel.hi_fraction(mid, 0.0)[0], abs=0.06)


def test_remedy_command_repeats_population_and_sky_frames(tmp_path, synthetic_frames):
    out = tmp_path / "set"
    write_mock_dataset(
        out,
        2,
        seed=4,
        size=32,
        shard_size=1,
        population="shift",
        sky_frames=synthetic_frames,
        progress=False,
    )
    (out / "shard-00001.h5").unlink()
    with pytest.raises(PicassoInputError) as error:
        ShardedDataset(out)
    message = str(error.value)
    assert "--population shift" in message
    assert f"--sky-frames {synthetic_frames.resolve()}" in message
