"""Shared fixtures: the real survey files beside the project, tiny models."""

import pytest
from helpers import SHARED_DATA, make_band_hdus, save_tiny_model


@pytest.fixture(scope="session")
def shared_data():
    """Path to ``../shared/data``; skips the test when the folder is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(
            f"real SDSS/MaNGA test files not found at {SHARED_DATA} "
            "(they live beside the project checkout, not in it)"
        )
    return SHARED_DATA


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory):
    """A tiny untrained model saved in the Hub layout, for plumbing tests.

    It records images prepared as the bundled model's were (no background,
    PSF matching or masking), so that synthetic cutouts need no PSF.
    """
    import torch

    from picasso_astro._options import LEGACY_PREPARATION
    from picasso_astro.config import ModelConfig
    from picasso_astro.hub import PicassoModel, save_model

    torch.manual_seed(0)
    config = ModelConfig(
        width=4,
        depth=2,
        groups=2,
        name="tiny-test",
        revision="t1",
        preprocessing=LEGACY_PREPARATION,
    )
    directory = tmp_path_factory.mktemp("tiny_model")
    save_model(PicassoModel(config.build_network(), config), directory)
    return directory


@pytest.fixture(scope="session")
def model_64(tmp_path_factory):
    """A tiny untrained model that cuts 64 x 64 pixels out of frames."""
    return save_tiny_model(
        tmp_path_factory.mktemp("model64"), cutout_size=64, name="tiny-64"
    )


@pytest.fixture
def cutout_files(tmp_path):
    """Five single-band cutout files of one synthetic galaxy."""
    paths = []
    for band, hdu in make_band_hdus().items():
        path = tmp_path / f"gal1-{band}.fits"
        hdu.writeto(path)
        paths.append(path)
    return paths
