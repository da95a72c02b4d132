"""Hub downloads against the loopback server: success, cache, every failure."""

import hashlib
import os

import pytest
import torch
from hub_server import MODEL_NAME, REPO_ID, git_blob_sha1

from picasso_astro.exceptions import PicassoInputError, PicassoModelError
from picasso_astro.hub import (
    CACHE_ENV,
    HubModel,
    ModelFile,
    download_model,
    load_model,
    load_model_directory,
    register_model,
)


def _load(name, fake_hub, cache, **kwargs):
    return load_model(
        name,
        endpoint=fake_hub.url,
        cache_dir=cache,
        token=False,
        progress=False,
        **kwargs,
    )


def assert_cache_clean(cache):
    """No partial file, and every cached file matches the hash that names it."""
    if not cache.exists():
        return
    for path in cache.rglob("*"):
        assert not path.name.endswith(".incomplete"), path
        if path.parent.name == "blobs" and path.is_file():
            data = path.read_bytes()
            assert path.name in (hashlib.sha256(data).hexdigest(), git_blob_sha1(data))
        if "snapshots" in path.parts and path.is_symlink():
            assert path.exists(), f"dangling {path}"


def cached_files(cache):
    return sorted(
        p.name for p in cache.rglob("*") if "snapshots" in p.parts and p.is_file()
    )


def test_download_then_cache_reuse(fake_hub, registered, cache, tiny_model_files):
    model = _load(MODEL_NAME, fake_hub, cache)
    assert fake_hub.requests, "the first call must download"
    assert model.source == f"{REPO_ID}@{registered.revision}"
    reference = load_model_directory(tiny_model_files[0])
    for key, value in reference.network.state_dict().items():
        torch.testing.assert_close(model.network.state_dict()[key], value)
    # Standard Hugging Face cache layout, pinned commit.
    snapshot = (
        cache / "models--picasso-test--tiny-unet" / "snapshots" / registered.revision
    )
    assert sorted(os.listdir(snapshot)) == ["config.json", "model.safetensors"]

    n_requests = len(fake_hub.requests)
    again = _load(MODEL_NAME, fake_hub, cache)
    assert len(fake_hub.requests) == n_requests, "the second call must send nothing"
    assert again.config.to_dict() == model.config.to_dict()


def test_only_config_and_safetensors_are_requested(fake_hub, registered, cache):
    _load(MODEL_NAME, fake_hub, cache)
    requested = {path.rsplit("/", 1)[-1] for path in fake_hub.paths_requested()}
    assert requested == {"config.json", "model.safetensors"}


def test_registry_refuses_unsafe_files():
    with pytest.raises(PicassoInputError, match=r"pytorch_model\.bin.*not allowed"):
        ModelFile("pytorch_model.bin", "0" * 64, 1)
    with pytest.raises(PicassoInputError, match="not allowed"):
        ModelFile("../model.safetensors")


def test_registry_requires_full_commit_hash():
    files = (ModelFile("config.json"), ModelFile("model.safetensors"))
    with pytest.raises(PicassoInputError, match="40-hex commit"):
        HubModel("x", "org/x", "main", files)
    with pytest.raises(PicassoInputError, match="already registered"):
        register_model(HubModel("picasso-unet-sdss", "org/x", None, files))


def test_unpublished_registry_entry_cannot_download(fake_hub, cache):
    with pytest.raises(PicassoModelError, match="not published yet"):
        _load("picasso-unet-sdss", fake_hub, cache)
    assert not fake_hub.requests


def test_unknown_name(fake_hub, cache):
    with pytest.raises(PicassoModelError, match="neither the bundled 'default'"):
        _load("no such model", fake_hub, cache)


def test_repo_id_with_revision(fake_hub, cache):
    commit = fake_hub.repos[REPO_ID]["commit"]
    model = _load(REPO_ID, fake_hub, cache, revision="main")
    assert model.source == f"{REPO_ID}@{commit}"
    assert cached_files(cache) == ["config.json", "model.safetensors"]
    # Pinned to the commit, the cached copy answers without the network.
    n_requests = len(fake_hub.requests)
    _load(REPO_ID, fake_hub, cache, revision=commit)
    assert len(fake_hub.requests) == n_requests
    # A branch is looked up again (it may have moved); files are not fetched again.
    _load(REPO_ID, fake_hub, cache, revision="main")
    new = fake_hub.requests[n_requests:]
    assert new
    assert all(method == "HEAD" for method, _, _ in new)
    with pytest.raises(PicassoModelError, match="revision 'v9' does not exist"):
        _load(REPO_ID, fake_hub, cache, revision="v9")


def test_registered_name_pins_its_revision(registered, fake_hub, cache):
    with pytest.raises(PicassoInputError, match="pinned to revision"):
        _load(MODEL_NAME, fake_hub, cache, revision="main")


def test_repo_not_found(fake_hub, cache):
    with pytest.raises(
        PicassoModelError, match="'picasso-test/missing' was not found"
    ) as info:
        _load("picasso-test/missing", fake_hub, cache)
    assert "HF_TOKEN" in str(info.value)
    assert_cache_clean(cache)


def test_file_not_found(fake_hub, cache):
    del fake_hub.repos[REPO_ID]["files"]["model.safetensors"]
    with pytest.raises(PicassoModelError, match=r"'model\.safetensors' is missing"):
        _load(REPO_ID, fake_hub, cache)
    assert "model.safetensors" not in cached_files(cache)
    assert_cache_clean(cache)


@pytest.mark.parametrize("mode", ["unauthorized", "gated"])
def test_unauthorized_mentions_tokens(fake_hub, registered, cache, mode):
    fake_hub.modes["*"] = mode
    with pytest.raises(PicassoModelError, match="refused") as info:
        _load(MODEL_NAME, fake_hub, cache)
    assert "HF_TOKEN" in str(info.value)
    assert MODEL_NAME in str(info.value)
    assert cached_files(cache) == []


@pytest.mark.parametrize("by", ["name", "repo_id"])
def test_truncated_body(fake_hub, registered, cache, by):
    fake_hub.modes["model.safetensors"] = "truncate"
    name = MODEL_NAME if by == "name" else REPO_ID
    with pytest.raises(PicassoModelError, match=r"model\.safetensors.*failed"):
        _load(name, fake_hub, cache)
    assert "model.safetensors" not in cached_files(cache)
    assert_cache_clean(cache)


def test_sha256_mismatch_from_server(fake_hub, registered, cache):
    fake_hub.modes["model.safetensors"] = "tamper"
    with pytest.raises(PicassoModelError, match=r"model\.safetensors of model") as info:
        _load(MODEL_NAME, fake_hub, cache)
    assert "sha256" in str(info.value)
    assert "not kept" in str(info.value)
    assert "model.safetensors" not in cached_files(cache)
    assert not list(cache.rglob("blobs/*"))[1:], "only config.json's blob may stay"
    assert_cache_clean(cache)


def test_stalled_server_times_out(fake_hub, registered, cache, monkeypatch, no_backoff):
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_DOWNLOAD_TIMEOUT", 0.3)
    fake_hub.modes["model.safetensors"] = "stall"
    with pytest.raises(PicassoModelError, match="timed out"):
        _load(MODEL_NAME, fake_hub, cache)
    assert "model.safetensors" not in cached_files(cache)
    assert_cache_clean(cache)


def test_connection_dropped_mid_file(fake_hub, registered, cache, no_backoff):
    fake_hub.modes["model.safetensors"] = "drop"
    with pytest.raises(PicassoModelError, match=r"model\.safetensors.*failed"):
        _load(MODEL_NAME, fake_hub, cache)
    assert "model.safetensors" not in cached_files(cache)
    assert_cache_clean(cache)


def test_connection_dropped_once_is_retried(fake_hub, registered, cache, no_backoff):
    fake_hub.modes["model.safetensors"] = "drop_once"
    _load(MODEL_NAME, fake_hub, cache)
    gets = [p for m, p, _ in fake_hub.requests if m == "GET" and "safetensors" in p]
    assert len(gets) >= 2, "the broken transfer should have been retried"
    assert_cache_clean(cache)


def test_flipped_byte_in_cache_is_refused(fake_hub, registered, cache):
    _load(MODEL_NAME, fake_hub, cache)
    weights = next(cache.rglob("snapshots/*/model.safetensors"))
    blob = weights.resolve()
    data = bytearray(blob.read_bytes())
    data[len(data) // 2] ^= 0x01
    blob.write_bytes(bytes(data))

    with pytest.raises(PicassoModelError, match=r"model\.safetensors") as info:
        _load(MODEL_NAME, fake_hub, cache)
    assert str(weights) in str(info.value)
    assert "removed from the cache" in str(info.value)
    assert f"picasso-predict download {MODEL_NAME}" in str(info.value)
    assert not weights.exists()
    assert not blob.exists()
    # The next call fetches a fresh copy.
    _load(MODEL_NAME, fake_hub, cache)
    assert_cache_clean(cache)


def test_flipped_byte_in_cache_of_repo_id_download(fake_hub, cache):
    _load(REPO_ID, fake_hub, cache)
    config = next(cache.rglob("snapshots/*/config.json"))
    blob = config.resolve()
    blob.write_bytes(blob.read_bytes().replace(b'"width": 4', b'"width": 5'))
    with pytest.raises(PicassoModelError, match=r"config\.json.*removed from"):
        _load(REPO_ID, fake_hub, cache, local_files_only=True)
    assert not config.exists()


def test_offline_uses_cache(fake_hub, registered, cache, monkeypatch):
    _load(MODEL_NAME, fake_hub, cache)
    n_requests = len(fake_hub.requests)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    _load(MODEL_NAME, fake_hub, cache)
    assert len(fake_hub.requests) == n_requests


def test_offline_without_cache_says_how_to_fetch(
    fake_hub, registered, cache, monkeypatch
):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(PicassoModelError, match="not in the local cache") as info:
        _load(MODEL_NAME, fake_hub, cache)
    message = str(info.value)
    assert MODEL_NAME in message
    assert f"picasso-predict download {MODEL_NAME}" in message
    assert "HF_HUB_OFFLINE" in message
    assert not fake_hub.requests


def test_no_network(fake_hub, registered, cache, no_backoff):
    _load(MODEL_NAME, fake_hub, cache)
    _load(REPO_ID, fake_hub, cache, revision="main")
    fake_hub.close()  # nothing listens on the port any more
    _load(MODEL_NAME, fake_hub, cache)  # pinned and cached: no request needed
    _load(REPO_ID, fake_hub, cache, revision="main")  # the cached commit of main
    with pytest.raises(PicassoModelError, match="could not reach") as info:
        _load(REPO_ID, fake_hub, cache / "empty")
    assert fake_hub.url in str(info.value)


def test_endpoint_and_cache_dir_from_environment(
    fake_hub, registered, tmp_path, monkeypatch
):
    cache = tmp_path / "env_cache"
    monkeypatch.setenv("HF_ENDPOINT", fake_hub.url)
    monkeypatch.setenv(CACHE_ENV, str(cache))
    directory = download_model(MODEL_NAME, token=False, progress=False)
    assert directory.is_relative_to(cache)
    assert fake_hub.requests


def test_local_directory_and_default(tiny_model_files):
    directory, _ = tiny_model_files
    assert load_model(directory).config.width == 4
    assert load_model(str(directory)).source == str(directory)
    with pytest.raises(TypeError, match="model must be"):
        load_model(3)
