"""predict() and picasso-predict on whole SDSS frames with a catalogue."""

import numpy as np
import pytest
from astropy.coordinates import SkyCoord
from astropy.table import Table
from click.testing import CliRunner
from helpers import FAST_FRAMES, FAST_WARNING, TARGET_WARNINGS, save_tiny_model

from picasso_astro import PicassoInputError, PicassoWarning, PropertyMaps, predict
from picasso_astro.cli import main

pytestmark = [
    pytest.mark.filterwarnings(FAST_WARNING),
    pytest.mark.filterwarnings(TARGET_WARNINGS),
]

# r-band centroids of three galaxies in field 004510-4-0030 (as in
# test_preprocess_frames.py).
RA = [200.43681677, 200.48877278, 200.50993224]
DEC = [36.86442291, 36.78051463, 36.73092147]


@pytest.fixture(scope="module")
def small_cutout_model(tmp_path_factory):
    return save_tiny_model(
        tmp_path_factory.mktemp("model96"), cutout_size=96, name="tiny-96"
    )


@pytest.fixture(scope="module")
def field_4510(shared_data):
    return shared_data / "sdss" / "field-004510-4-0030"


def _centre_offset(maps, ra, dec):
    x, y = maps.wcs.world_to_pixel(SkyCoord(ra, dec, unit="deg"))
    ny, nx = maps.shape
    return np.hypot(x - (nx - 1) / 2, y - (ny - 1) / 2)


def test_cli_frames_and_catalogue_acceptance(field_4510, small_cutout_model, tmp_path):
    catalog = tmp_path / "galaxies.csv"
    Table({"name": ["gal-a", "gal-b", "gal-c"], "ra": RA, "dec": DEC}).write(catalog)
    out = tmp_path / "maps"
    result = CliRunner().invoke(
        main,
        [
            "--frames",
            str(field_4510),
            "--catalog",
            str(catalog),
            "-o",
            str(out),
            "--model",
            str(small_cutout_model),
            "--no-progress",
        ],
    )
    assert result.exit_code == 0, result.output
    for name, ra, dec in zip(["gal-a", "gal-b", "gal-c"], RA, DEC, strict=True):
        maps = PropertyMaps.read(out / f"{name}.fits")
        assert maps.shape == (96, 96)
        assert _centre_offset(maps, ra, dec) < 1.0
        assert maps.meta["preprocessing"]["field"] == "004510-4-0030"
        assert len(maps.meta["inputs"]) == 5


def test_a_models_recorded_context_is_used_for_frames(field_4510, tmp_path):
    from picasso_astro.config import ModelConfig
    from picasso_astro.hub import PicassoModel, save_model
    from picasso_astro.preprocess import PreparationOptions

    cutout = {"kind": "fixed", "size": 64}
    plain = ModelConfig(width=4, depth=2, groups=2, name="tiny", cutout=cutout)
    network = plain.build_network()
    save_model(PicassoModel(network, plain), tmp_path / "plain")
    recorded = ModelConfig.from_dict(plain.to_dict())
    recorded.preprocessing = PreparationOptions(context=16)
    save_model(PicassoModel(network, recorded), tmp_path / "context")
    target = SkyCoord(RA[2], DEC[2], unit="deg")

    def run(model, **options):
        (maps,) = predict(
            field_4510, targets=target, model=tmp_path / model,
            preprocessing={**FAST_FRAMES, **options},
        )  # fmt: skip
        return maps

    own = run("context")
    assert own.meta["preprocessing"]["options"]["context"] == 16
    assert own.shape == (64, 64)  # cut back to the cutout
    given = run("plain", context=16)
    np.testing.assert_array_equal(own["stellar_mass"].data, given["stellar_mass"].data)
    with pytest.warns(PicassoWarning, match=r"context=0 \(trained with 16\)"):
        alone = run("context", context=0)
    assert alone.meta["preprocessing"]["options"]["context"] == 0
    assert not np.array_equal(own["stellar_mass"].data, alone["stellar_mass"].data)


def test_target_outside_every_frame(field_4510, small_cutout_model):
    targets = SkyCoord([RA[0], 10.0], [DEC[0], -40.0], unit="deg")
    with pytest.raises(
        PicassoInputError, match=r"J010\.00000-40\.00000.*outside.*check its coord"
    ):
        predict(
            field_4510,
            targets=targets,
            model=small_cutout_model,
            preprocessing=FAST_FRAMES,
        )
    with pytest.warns(PicassoWarning, match="outside every frame"):
        results = predict(
            field_4510,
            targets=targets,
            model=small_cutout_model,
            on_error="skip",
            preprocessing=FAST_FRAMES,
        )
    assert isinstance(results[0], PropertyMaps)
    assert results[1] is None


def test_corrupt_frame_spoils_only_its_field(field_4510, small_cutout_model, tmp_path):
    frames = tmp_path / "frames"
    frames.mkdir()
    for path in field_4510.glob("frame-*.fits.bz2"):
        (frames / path.name).symlink_to(path)
        # A second field whose files are truncated copies: unreadable.
        broken = frames / path.name.replace("004510-4-0030", "004510-4-0031")
        broken.write_bytes(path.read_bytes()[:5000])
    with pytest.warns(PicassoWarning, match="could not be read.*get its frames"):
        results = predict(
            frames,
            targets=SkyCoord([RA[0], 10.0], [DEC[0], -40.0], unit="deg"),
            model=small_cutout_model,
            on_error="skip",
            preprocessing=FAST_FRAMES,
        )
    assert isinstance(results[0], PropertyMaps)
    assert results[1] is None


def test_cli_usage_errors(tmp_path):
    runner = CliRunner()
    result = runner.invoke(main, ["run", "-o", str(tmp_path)])
    assert result.exit_code == 2 and "either CUTOUT" in result.output
    result = runner.invoke(main, ["--frames", str(tmp_path), "-o", str(tmp_path)])
    assert result.exit_code == 2 and "go together" in result.output
    bad = tmp_path / "cat.csv"
    bad.write_text("x,y\n1,2\n")
    result = runner.invoke(
        main, ["--frames", str(tmp_path), "--catalog", str(bad), "-o", str(tmp_path)]
    )
    assert result.exit_code == 1 and "ra and dec" in result.output
