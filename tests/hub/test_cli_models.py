"""``picasso-predict models`` / ``download``, invoked through click's runner."""

import pytest
from click.testing import CliRunner
from hub_server import MODEL_NAME, REPO_ID

from picasso_astro._cli_models import download_command, models_command


@pytest.fixture
def runner():
    return CliRunner()


def test_download_then_models_lists_it(runner, fake_hub, registered, cache):
    args = ["--cache-dir", str(cache), "--endpoint", fake_hub.url]
    result = runner.invoke(download_command, [MODEL_NAME, *args])
    assert result.exit_code == 0, result.output
    assert f"{MODEL_NAME}: ready in" in result.output
    assert "model.safetensors" in result.stderr  # the progress bar
    assert "100%" in result.stderr

    result = runner.invoke(models_command, ["--cache-dir", str(cache)])
    assert result.exit_code == 0, result.output
    lines = {line.split()[0]: line.split() for line in result.output.splitlines()[1:-2]}
    assert lines[MODEL_NAME][1:3] == ["cached", registered.revision[:12]]
    assert lines["picasso-unet-sdss"][1] == "unpublished"
    assert f"cache: {cache}" in result.output


def test_models_known_but_not_cached(runner, registered, cache):
    result = runner.invoke(models_command, ["--cache-dir", str(cache)])
    assert result.exit_code == 0, result.output
    line = next(li for li in result.output.splitlines() if li.startswith(MODEL_NAME))
    assert line.split()[1] == "known"
    assert "kB" in line  # size from the registry


def test_models_lists_repo_id_downloads(runner, fake_hub, cache):
    args = [REPO_ID, "--cache-dir", str(cache), "--endpoint", fake_hub.url, "--quiet"]
    assert runner.invoke(download_command, args).exit_code == 0
    result = runner.invoke(models_command, ["--cache-dir", str(cache)])
    line = next(li for li in result.output.splitlines() if li.startswith(REPO_ID))
    assert line.split()[1] == "cached"


def test_download_errors_are_one_line(runner, fake_hub, cache, monkeypatch):
    monkeypatch.setenv("HF_ENDPOINT", fake_hub.url)
    result = runner.invoke(download_command, ["picasso-unet-sdss"])
    assert result.exit_code == 1
    assert "Error: model 'picasso-unet-sdss'" in result.stderr
    assert "not published yet" in result.stderr
    assert "Traceback" not in result.output

    result = runner.invoke(download_command, ["org/missing", "--cache-dir", str(cache)])
    assert result.exit_code == 1
    assert "was not found" in result.stderr


def test_download_offline(runner, registered, cache, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    result = runner.invoke(download_command, [MODEL_NAME, "--cache-dir", str(cache)])
    assert result.exit_code == 1
    assert "HF_HUB_OFFLINE" in result.stderr
