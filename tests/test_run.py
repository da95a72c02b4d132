"""One run: options checked first, the model's preparation, per-galaxy failures."""

import json
import shutil
import time

import numpy as np
import pytest
from astropy.coordinates import SkyCoord
from helpers import FAST_FRAMES, FAST_WARNING, TARGET_WARNINGS, write_galaxy_files

from picasso_astro import (
    PicassoInputError,
    PicassoModelError,
    PicassoWarning,
    PropertyMaps,
    load_model,
    predict,
    predict_to_files,
)
from picasso_astro import _stream as stream_module
from picasso_astro.config import ModelConfig
from picasso_astro.preprocess import PreparationOptions

# The synthetic cutouts hold no stars to measure PSFs on: a PSF is assumed.
pytestmark = pytest.mark.filterwarnings(
    "ignore::picasso_astro.exceptions.AssumedPSFWarning"
)


@pytest.fixture
def galaxy_files(tmp_path):
    folder = tmp_path / "cutouts"
    folder.mkdir()
    return write_galaxy_files(folder, 3)


def test_a_typo_in_preprocessing_fails_before_the_model_is_loaded(
    galaxy_files, tmp_path
):
    # A model that would fail if it were loaded: the typo must be found first.
    missing_model = tmp_path / "no-such-model"
    start = time.perf_counter()
    with pytest.raises(PicassoInputError, match="match_psfs") as caught:
        predict(galaxy_files, model=missing_model, preprocessing={"match_psfs": False})
    elapsed = time.perf_counter() - start
    for name in PreparationOptions.names():
        assert name in str(caught.value)
    with pytest.raises(PicassoInputError, match="True or False"):
        predict_to_files(
            galaxy_files,
            tmp_path / "out",
            model=missing_model,
            preprocessing={"background": "yes"},
        )
    assert not (tmp_path / "out").exists()
    with pytest.raises(PicassoModelError):
        predict(galaxy_files, model=missing_model)
    print(f"typo reported after {elapsed:.3f} s")


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"pad": -1}, "non-negative"),
        ({"reference_band": "y"}, "one of u, g, r, i, z"),
        ({"psf_fwhm": 0.0}, "positive FWHM"),
        ({"psf_fwhm": {"q": 1.0}}, "bands among"),
        ("match_psf=False", "must be a dict"),
    ],
)
def test_bad_option_values_are_named(options, message):
    with pytest.raises(PicassoInputError, match=message):
        PreparationOptions.check(options)


def test_targets_are_checked_before_the_model_is_loaded(tmp_path):
    missing_model = tmp_path / "no-such-model"
    with pytest.raises(PicassoInputError, match="no such catalogue file; check"):
        predict(tmp_path, targets=tmp_path / "none.csv", model=missing_model)
    catalogue = tmp_path / "cat.csv"
    catalogue.write_text("x,y\n1,2\n")
    with pytest.raises(PicassoInputError, match="ra and dec.*name the columns"):
        predict(tmp_path, targets=catalogue, model=missing_model)


def test_the_models_preparation_is_used_and_recorded(galaxy_files, tiny_model_dir):
    loaded = load_model(tiny_model_dir)
    assert not loaded.config.preprocessing.background
    (maps, *_) = predict(galaxy_files, model=loaded)
    steps = maps.meta["preprocessing"]
    assert steps["background"] is False
    assert steps["psf_matching"] is False
    assert steps["options"]["background"] is False


def test_switching_a_recorded_step_warns(galaxy_files, tiny_model_dir):
    with pytest.warns(PicassoWarning, match=r"background=True \(trained with False\)"):
        (maps, *_) = predict(
            galaxy_files, model=tiny_model_dir, preprocessing={"background": True}
        )
    assert set(maps.meta["preprocessing"]["background"]) == set("ugriz")


def test_the_bundled_model_records_its_preparation():
    # Trained on mocks prepared as predict prepares galaxies, and on windows
    # at varied offsets: it sees 32 frame pixels around a cutout.
    config = load_model().config
    assert config.preprocessing.recorded() == {
        "background": True,
        "match_psf": True,
        "mask_sources": True,
        "reference_band": "r",
        "context": 32,
    }


def test_config_preprocessing_block_is_validated(tiny_model_dir):
    config = json.loads((tiny_model_dir / "config.json").read_text())
    assert (
        ModelConfig.from_dict(config).preprocessing.recorded()
        == (config["preprocessing"])
    )
    legacy = {k: v for k, v in config.items() if k != "preprocessing"}
    assert not ModelConfig.from_dict(legacy).preprocessing.match_psf
    bad_blocks = (
        {"match_psfs": True},
        {"background": 1},
        ["background"],
        {"context": -1},
    )
    for block in bad_blocks:
        with pytest.raises(PicassoModelError, match="preprocessing"):
            ModelConfig.from_dict(config | {"preprocessing": block})
    for block in ({"r_max": 3}, {"r_max_nmgy": -1.0}, {"r_max_nmgy": "6"}):
        with pytest.raises(PicassoModelError, match="input_range"):
            ModelConfig.from_dict(config | {"input_range": block})


def test_a_model_that_records_a_context_gets_it_by_default(tiny_model_dir):
    from picasso_astro._run import preparation_for

    config = json.loads((tiny_model_dir / "config.json").read_text())
    assert "context" not in config["preprocessing"]  # 0 is not written
    config["preprocessing"]["context"] = 32
    loaded = load_model(tiny_model_dir)
    loaded.config = ModelConfig.from_dict(config)
    assert loaded.config.to_dict()["preprocessing"]["context"] == 32
    assert preparation_for(loaded, {}).context == 32
    with pytest.warns(PicassoWarning, match=r"context=0 \(trained with 32\)"):
        assert preparation_for(loaded, {"context": 0}).context == 0


def test_the_callers_model_is_left_as_it_was(galaxy_files, tiny_model_dir):
    import torch

    loaded = load_model(tiny_model_dir)
    weight = next(loaded.network.parameters())
    before = (weight.device, weight.stride(), weight.data_ptr())
    predict(galaxy_files, model=loaded, device="cpu")
    weight = next(loaded.network.parameters())
    assert (weight.device, weight.stride(), weight.data_ptr()) == before
    assert weight.is_contiguous(memory_format=torch.contiguous_format)


def test_any_error_of_one_galaxy_is_only_that_galaxys(
    galaxy_files, tiny_model_dir, monkeypatch
):
    real = stream_module._cutout_payload

    def flaky(source, config, options):
        if source.name == "gal1":
            msg = "a library failed deep inside"
            raise ValueError(msg)
        return real(source, config, options)

    monkeypatch.setattr(stream_module, "_cutout_payload", flaky)
    with pytest.warns(PicassoWarning, match=r"gal1: could not be processed \(Value"):
        results = predict(galaxy_files, model=tiny_model_dir, on_error="skip")
    assert isinstance(results[0], PropertyMaps)
    assert results[1] is None
    assert isinstance(results[2], PropertyMaps)
    with pytest.raises(PicassoInputError, match="a library failed deep inside"):
        predict(galaxy_files, model=tiny_model_dir)


def test_a_network_failure_fails_its_batch_only(
    galaxy_files, tiny_model_dir, monkeypatch
):
    real = stream_module.run_network
    calls = []

    def failing_once(*args, **kwargs):
        calls.append(1)
        if len(calls) == 1:
            msg = "out of memory"
            raise RuntimeError(msg)
        return real(*args, **kwargs)

    monkeypatch.setattr(stream_module, "run_network", failing_once)
    with pytest.warns(PicassoWarning, match="RuntimeError: out of memory"):
        results = predict(
            galaxy_files, model=tiny_model_dir, batch_size=1, on_error="skip"
        )
    assert results[0] is None
    assert all(isinstance(maps, PropertyMaps) for maps in results[1:])


@pytest.mark.filterwarnings(FAST_WARNING)
# The good galaxy lies in a globular cluster's field (M2): stars everywhere.
@pytest.mark.filterwarnings(TARGET_WARNINGS)
def test_a_band_frame_that_misses_its_target_fails_that_galaxy_only(
    shared_data, model_64, tmp_path
):
    """A u frame of another field under this field's name: NoOverlapError."""
    sdss = shared_data / "sdss"
    frames = tmp_path / "frames"
    shutil.copytree(sdss / "field-002583-2-0136", frames / "good")
    broken = frames / "broken"
    broken.mkdir()
    for path in (sdss / "field-004510-4-0030").glob("frame-[griz]-*.fits.bz2"):
        (broken / path.name).symlink_to(path)
    (other_u,) = (sdss / "field-005405-6-0099").glob("frame-u-*.fits.bz2")
    (broken / "frame-u-004510-4-0030.fits.bz2").symlink_to(other_u)
    good_field = next((frames / "good").glob("frame-r-*"))
    from picasso_astro.sdss import read_frame

    centre = read_frame(good_field).wcs.pixel_to_world(1000, 700)
    targets = SkyCoord(
        [200.50993224, centre.ra.deg], [36.73092147, centre.dec.deg], unit="deg"
    )
    with pytest.warns(PicassoWarning, match="another field; check the frames"):
        results = predict(
            frames,
            targets=targets,
            model=model_64,
            on_error="skip",
            preprocessing=FAST_FRAMES | {"background": False},
        )
    assert results[0] is None
    assert isinstance(results[1], PropertyMaps)
    assert np.isfinite(results[1]["stellar_mass"].data).any()


@pytest.mark.filterwarnings(FAST_WARNING)
@pytest.mark.filterwarnings(TARGET_WARNINGS)
def test_half_light_radii_size_cutouts_when_asked(shared_data, model_64):
    from astropy.table import Table

    field = shared_data / "sdss" / "field-004510-4-0030"
    table = Table({"ra": [200.50993224], "dec": [36.73092147], "petroR50_r": [4.0]})
    fast = FAST_FRAMES | {"background": False}
    with pytest.warns(PicassoWarning, match="half-light radii are not used"):
        (fixed,) = predict(field, targets=table, model=model_64, preprocessing=fast)
    assert fixed.shape == (64, 64)
    sized = fast | {"cutout": {"kind": "half_light", "factor": 10, "min_size": 32}}
    (maps,) = predict(field, targets=table, model=model_64, preprocessing=sized)
    assert maps.shape == (102, 102)  # ceil(10 x 4.0 / 0.396)
    with pytest.raises(PicassoInputError, match="cutout must be"):
        predict(field, targets=table, model=model_64, preprocessing={"cutout": 4})
