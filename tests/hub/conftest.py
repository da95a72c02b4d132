"""Fixtures for the Hub tests: a fake Hub on 127.0.0.1 (see hub_server.py)."""

import time
from pathlib import Path

import pytest
from hub_server import MODEL_NAME, REPO_ID, FakeHub

from picasso_astro.config import ModelConfig
from picasso_astro.hub import (
    HubModel,
    PicassoModel,
    hash_model_files,
    register_model,
    save_model,
    unregister_model,
)


@pytest.fixture(autouse=True)
def _isolated_hub_env(monkeypatch, tmp_path):
    """Keep the user's Hub settings, token and cache out of every test."""
    from huggingface_hub import constants

    for name in (
        "HF_HUB_OFFLINE",
        "HF_ENDPOINT",
        "HF_HUB_CACHE",
        "PICASSO_ASTRO_CACHE_DIR",
        "HF_TOKEN",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf_home"))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "default_cache"))
    monkeypatch.setattr(constants, "HF_HUB_DISABLE_IMPLICIT_TOKEN", True)


@pytest.fixture
def no_backoff(monkeypatch):
    """Skip huggingface_hub's waits between retries (the retries still happen)."""
    real_sleep = time.sleep
    monkeypatch.setattr(time, "sleep", lambda seconds: real_sleep(min(seconds, 0.01)))


@pytest.fixture(scope="session")
def tiny_model_files(tmp_path_factory):
    """Files of a tiny saved model, plus files that must never be fetched."""
    directory = tmp_path_factory.mktemp("tiny_model")
    config = ModelConfig(width=4, depth=1, name="tiny", revision="test")
    save_model(PicassoModel(config.build_network(), config), directory)
    files = {p.name: p.read_bytes() for p in Path(directory).iterdir()}
    files["pytorch_model.bin"] = b"not a pickle, but it must never be requested"
    files["modeling.py"] = b"raise SystemExit('code from a model repo ran')\n"
    return directory, files


@pytest.fixture
def fake_hub(tiny_model_files):
    """A running `FakeHub` with the tiny model at ``REPO_ID``."""
    _, files = tiny_model_files
    hub = FakeHub()
    hub.add_repo(REPO_ID, files)
    yield hub
    hub.close()


@pytest.fixture
def registered(fake_hub, tiny_model_files):
    """Register ``MODEL_NAME``: the tiny model, pinned to the fake repo's commit."""
    directory, _ = tiny_model_files
    entry = HubModel(
        name=MODEL_NAME,
        repo_id=REPO_ID,
        revision=fake_hub.repos[REPO_ID]["commit"],
        files=hash_model_files(directory),
        description="tiny test model",
    )
    register_model(entry)
    yield entry
    unregister_model(MODEL_NAME)


@pytest.fixture
def cache(tmp_path):
    return tmp_path / "cache"
