"""IFU training sets: synthetic SDSS images on IFU files' WCS, and fine-tuning."""

import astropy.units as u
import numpy as np
import pytest
import torch
from astropy.wcs import WCS
from click.testing import CliRunner
from helpers import TARGET_WARNINGS

from picasso_astro.config import ModelConfig
from picasso_astro.exceptions import PicassoInputError
from picasso_astro.ifu import read_manga_maps
from picasso_astro.images import BANDS, BandImage
from picasso_astro.properties import PROPERTIES
from picasso_astro.training._data import TrainingPairs, split_indices
from picasso_astro.training._loss import quantized_regression_loss
from picasso_astro.training.dataset import ShardedDataset
from picasso_astro.training.ifu import truth_on_grid, write_ifu_dataset
from picasso_astro.training.trainer import TrainConfig, fit

pytest.importorskip("h5py")

IFU_SIDE = 30  # spaxels of 0.5 arcsec: 15 arcsec
SDSS_SIDE = 72  # pixels of 0.396 arcsec: 28.5 arcsec
CUTOUT = 32
FAST = {"background": False, "match_psf": False, "mask_sources": False}
PROPS = ("sfr", "gas_metallicity", "stellar_mass")


def _wcs(ra, dec, side, scale):
    wcs = WCS(naxis=2)
    wcs.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    wcs.wcs.crval = [ra, dec]
    wcs.wcs.crpix = [(side + 1) / 2, (side + 1) / 2]
    wcs.wcs.cdelt = [-scale / 3600, scale / 3600]
    return wcs


def _profile(wcs, side, centre, radius):
    yy, xx = np.mgrid[0:side, 0:side]
    r = wcs.pixel_to_world(xx, yy).separation(centre).to_value(u.arcsec)
    return np.exp(-0.5 * (r / radius) ** 2)


def synthetic_ifu_galaxy(folder, seed):
    """A fake MaNGA MAPS file and five SDSS-like bands on its part of the sky.

    H-alpha follows the galaxy's light with a per-galaxy brightness: the
    star-formation surface density is a fixed function of the r-band flux.
    """
    from ifu_helpers import write_fake_maps

    rng = np.random.default_rng(seed)
    ra, dec = 150.0 + seed * 0.1, 2.0
    ifu = _wcs(ra, dec, IFU_SIDE, 0.5)
    centre = ifu.pixel_to_world((IFU_SIDE - 1) / 2, (IFU_SIDE - 1) / 2)
    radius = rng.uniform(1.5, 3.5)
    amp = 10 ** rng.uniform(-0.5, 0.5)
    halpha = 40 * amp * _profile(ifu, IFU_SIDE, centre, radius) + 1e-3
    lines = {
        "Ha-6564": halpha,
        "Hb-4862": halpha / 2.86,
        "NII-6585": 0.3 * halpha,
        "OIII-5008": 0.2 * halpha,
        "SII-6718": 0.1 * halpha,
    }
    path = write_fake_maps(folder / f"manga-{seed}-MAPS.fits", lines, wcs=ifu)
    sdss = _wcs(ra, dec, SDSS_SIDE, 0.396)
    light = amp * _profile(sdss, SDSS_SIDE, centre, radius)
    yy, xx = np.mgrid[-7:8, -7:8]
    psf = np.exp(-0.5 * (xx**2 + yy**2) / 1.5**2)
    psf /= psf.sum()
    images = {}
    for k, band in enumerate(BANDS):
        noise = np.full((SDSS_SIDE, SDSS_SIDE), 0.02, np.float32)
        data = (0.5 + 0.3 * k) * light + noise * rng.standard_normal(light.shape)
        images[band] = BandImage(
            band, data.astype(np.float32), wcs=sdss, noise=noise, psf=psf, psf_fwhm=1.4
        )
    return path, images


@pytest.fixture(scope="module")
def galaxies(tmp_path_factory):
    folder = tmp_path_factory.mktemp("ifu")
    return [synthetic_ifu_galaxy(folder, seed) for seed in range(12)]


def test_truth_on_grid_keeps_totals_and_marks_what_is_missing(galaxies):
    path, images = galaxies[0]
    truth = read_manga_maps(path)
    wcs = images["r"].wcs
    values, valid = truth_on_grid(truth, wcs, (SDSS_SIDE, SDSS_SIDE))
    names = list(PROPERTIES)
    assert not valid[names.index("hi")].any()
    assert np.isnan(values[names.index("stellar_mass")]).all()
    sfr = names.index("sfr")
    assert valid[sfr].any()
    assert not valid[sfr][0].any()  # the SDSS grid reaches beyond the IFU's
    # Totals kept: surface density times pixel area, on both grids.
    ifu_total = np.nansum(10 ** truth["sfr"].data.astype(float)) * 0.5**2
    sdss_total = np.nansum(10 ** values[sfr].astype(float)) * 0.396**2
    assert sdss_total == pytest.approx(ifu_total, rel=0.03)


def test_dataset_is_written_in_the_trainers_format(galaxies, tmp_path):
    items = [{"ifu": path, "images": images} for path, images in galaxies[:3]]
    items.append({"ifu": galaxies[3][0]})  # no images: skipped
    report = write_ifu_dataset(
        tmp_path / "set", items, size=CUTOUT, preprocessing=FAST, on_error="skip"
    )
    assert report["written"] == ["1-2"] * 3
    assert "give its SDSS images" in report["skipped"][0][1]
    with ShardedDataset(tmp_path / "set") as data:
        assert len(data) == 3
        assert data.attrs["kind"] == "ifu"
        assert data.attrs["preprocessing"]["background"] is False
        item = data[1]
    assert item["images"].shape == (5, CUTOUT, CUTOUT)
    assert item["truth"].shape == (len(PROPERTIES), CUTOUT, CUTOUT)
    names = list(PROPERTIES)
    assert item["truth_valid"][names.index("sfr")].mean() > 0.3
    assert not item["truth_valid"][names.index("hi")].any()
    assert item["extras"]["ifu_source"] == "MaNGA DAP MAPS"
    assert item["params"]["ifu_psf_fwhm"] == 2.5
    with pytest.raises(PicassoInputError, match="already holds a dataset"):
        write_ifu_dataset(tmp_path / "set", items[:1], size=CUTOUT)


def test_full_preparation_and_off_field_images(galaxies, tmp_path):
    path, images = galaxies[0]
    report = write_ifu_dataset(
        tmp_path / "full", [{"ifu": path, "images": images}], size=CUTOUT
    )
    assert report["written"] == ["1-2"]
    elsewhere = galaxies[5][1]  # another galaxy's images, 0.5 degrees away
    with pytest.raises(PicassoInputError):
        write_ifu_dataset(
            tmp_path / "bad", [{"ifu": path, "images": elsewhere}], size=CUTOUT,
            preprocessing=FAST,
        )  # fmt: skip


def _held_out_loss(model, dataset, indices):
    pairs = TrainingPairs(
        dataset,
        model.property_names,
        indices=indices,
        softening=model.config.softening,
        multiple=model.network.multiple,
    )
    network = model.network.eval()
    edges = {n: network.heads[n].bin_edges for n in model.property_names}
    batch = torch.utils.data.default_collate([pairs[i] for i in range(len(pairs))])
    with torch.no_grad():
        loss, _ = quantized_regression_loss(
            network(batch["x"]), batch["truth"], batch["weight"], edges
        )
    return float(loss)


@pytest.mark.slow
def test_fine_tuning_on_ifu_maps_lowers_the_held_out_loss(galaxies, tmp_path):
    from picasso_astro.training.mocks import write_mock_dataset

    torch.manual_seed(0)
    write_mock_dataset(
        tmp_path / "mocks", 4, seed=3, size=CUTOUT, preprocessing=FAST, progress=False
    )
    mock_model = fit(
        ShardedDataset(tmp_path / "mocks"),
        tmp_path / "mock-run",
        train_config=TrainConfig(epochs=1, batch_size=2, lr=3e-3, val_fraction=0.0),
        model_config=ModelConfig(
            properties={n: {"bin_edges": list(PROPERTIES[n].bin_edges)} for n in PROPS},
            width=4,
            depth=2,
            groups=2,
            name="tiny-mocks",
        ),
        device="cpu",
        progress=False,
    ).model
    write_ifu_dataset(
        tmp_path / "ifu-set",
        [{"ifu": path, "images": images} for path, images in galaxies],
        size=CUTOUT,
        preprocessing=FAST,
    )
    data = ShardedDataset(tmp_path / "ifu-set")
    recipe = TrainConfig(
        epochs=8,
        batch_size=3,
        lr=1e-2,
        val_fraction=0.25,
        brightness=0.0,
        freeze=("encoder",),
        seed=1,
    )
    _, val = split_indices(len(data), val_fraction=0.25, seed=1)
    before = _held_out_loss(mock_model, data, val)
    tuned = fit(
        data,
        tmp_path / "ifu-run",
        train_config=recipe,
        device="cpu",
        progress=False,
        initial_model=mock_model,
    )
    after = _held_out_loss(tuned.model, data, val)
    print(f"held-out loss: {before:.4f} before, {after:.4f} after fine-tuning")
    assert after < 0.8 * before
    # evaluate scores the held-out galaxies of the run's split.
    from picasso_astro.training.evaluate import evaluate

    metrics = evaluate(
        tmp_path / "ifu-run" / "model", data, indices=val, device="cpu",
        progress=False,
    )  # fmt: skip
    assert metrics["n_galaxies"] == len(val)
    # The encoder was frozen, the rest was not.
    start = mock_model.network.state_dict()
    end = tuned.model.network.state_dict()
    for key, value in end.items():
        if key.startswith("encoder.") and key.endswith("weight"):
            torch.testing.assert_close(value, start[key])
    assert not torch.equal(end["heads.sfr.conv.weight"], start["heads.sfr.conv.weight"])


def test_freeze_names_parts_of_the_network():
    with pytest.raises(PicassoInputError, match="cannot freeze bottleneck"):
        TrainConfig(freeze=("bottleneck",))
    assert TrainConfig.from_dict({"freeze": ["heads"]}).freeze == ("heads",)
    assert TrainConfig.from_dict({}).freeze == ()


def test_ifu_command(galaxies, tmp_path, monkeypatch):
    from picasso_astro.training import cli

    captured = {}

    def fake_write(output, items, **options):
        captured.update(items=items, options=options)
        return {"written": ["a"], "skipped": [("b", "no frames")]}

    monkeypatch.setattr("picasso_astro.training.ifu.write_ifu_dataset", fake_write)
    path = galaxies[0][0]
    runner = CliRunner()
    result = runner.invoke(
        cli.main,
        ["ifu", str(path), "--frames", str(tmp_path), "-o", str(tmp_path / "o"),
         "--no-background", "--skip-errors", "--calibration", "PP04"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert captured["items"] == [{"ifu": str(path), "frames": str(tmp_path)}]
    assert captured["options"]["preprocessing"]["background"] is False
    assert captured["options"]["ifu_options"]["calibration"] == "PP04"
    assert captured["options"]["on_error"] == "skip"
    assert "skipped b" in result.output
    catalog = tmp_path / "galaxies.csv"
    catalog.write_text(f"ifu,run,camcol,field\n{path},1000,1,100\n")
    result = runner.invoke(
        cli.main, ["ifu", "--catalog", str(catalog), "-o", str(tmp_path / "o")]
    )
    assert result.exit_code != 0 and "--download" in result.output
    result = runner.invoke(cli.main, ["ifu", str(path), "-o", str(tmp_path / "o")])
    assert result.exit_code != 0 and "--frames" in result.output


@pytest.mark.slow
@pytest.mark.shared_data
@pytest.mark.filterwarnings(TARGET_WARNINGS)
def test_ifu_command_on_real_frames(shared_data, tmp_path):
    """A fake MaNGA file on a galaxy of field 4510-4-30; another off the field."""
    from ifu_helpers import write_fake_maps

    from picasso_astro.training import cli

    on_field = _wcs(200.50993224, 36.73092147, IFU_SIDE, 0.5)
    off_field = _wcs(10.0, 10.0, IFU_SIDE, 0.5)
    files = []
    for k, wcs in enumerate((on_field, off_field)):
        centre = wcs.pixel_to_world((IFU_SIDE - 1) / 2, (IFU_SIDE - 1) / 2)
        halpha = 20 * _profile(wcs, IFU_SIDE, centre, 2.0) + 1e-3
        lines = {
            "Ha-6564": halpha,
            "Hb-4862": halpha / 2.86,
            "NII-6585": 0.3 * halpha,
            "OIII-5008": 0.2 * halpha,
            "SII-6718": 0.1 * halpha,
        }
        files.append(write_fake_maps(tmp_path / f"manga-{k}-MAPS.fits", lines, wcs=wcs))
    frames = shared_data / "sdss" / "field-004510-4-0030"
    result = CliRunner().invoke(
        cli.main,
        ["ifu", *map(str, files), "--frames", str(frames), "-o",
         str(tmp_path / "set"), "--size", "64", "--skip-errors", "--quiet"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "1 galaxies" in result.output
    assert "no frame in" in result.output  # the galaxy off the field
    with ShardedDataset(tmp_path / "set") as data:
        item = data[0]
    assert item["images"].shape == (5, 64, 64)
    assert item["images"][2, 28:36, 28:36].mean() > 0.5  # the galaxy, centred
    assert item["truth_valid"][list(PROPERTIES).index("sfr")].sum() > 200


def test_ifu_command_downloads_the_catalogues_fields(galaxies, tmp_path, monkeypatch):
    from picasso_astro.training import cli

    calls, captured = [], {}

    def fake_download(run, camcol, field, *, directory, psfield):
        calls.append((run, camcol, field, psfield))
        return directory

    def fake_write(output, items, **options):
        captured["items"] = items
        return {"written": ["a"], "skipped": []}

    monkeypatch.setattr("picasso_astro.sdss.download_frames", fake_download)
    monkeypatch.setattr("picasso_astro.training.ifu.write_ifu_dataset", fake_write)
    path = galaxies[0][0]
    catalog = tmp_path / "galaxies.csv"
    catalog.write_text(f"ifu,run,camcol,field\n{path},4510,4,30\n")
    result = CliRunner().invoke(
        cli.main,
        ["ifu", "--catalog", str(catalog), "--download", "-o", str(tmp_path / "o")],
    )
    assert result.exit_code == 0, result.output
    assert calls == [(4510, 4, 30, True)]
    assert captured["items"][0]["frames"].endswith("004510-4-0030")
