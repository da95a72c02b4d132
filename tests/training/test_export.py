import json
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner
from synthetic import SyntheticGalaxies, tiny_model_config

from picasso_astro.exceptions import PicassoInputError
from picasso_astro.hub import load_model
from picasso_astro.training._cli_train import push_command
from picasso_astro.training.export import HUB_FILES, export_run, push_to_hub
from picasso_astro.training.trainer import TrainConfig, fit, model_from_checkpoint

METRICS = {
    "model": "tiny",
    "n_galaxies": 4,
    "selection": "unmasked pixels with valid truth and r-band S/N > 3",
    "properties": {
        "stellar_mass": {
            "pixel": {"n": 10, "rms": 0.123, "bias": -0.045, "scatter": 0.1},
            "integrated": {"n": 4, "scatter": 0.0871, "bias": 0.0123},
            "calibration": {"coverage_68": 0.61, "coverage_95": 0.9},
            "profile": {
                "r_over_rhalf_edges": [0.0],
                "n": [1],
                "bias": [0.0],
                "rms": [0.0],
            },
        }
    },
    "baseline": {
        "rms": 0.2,
        "bias": 0.01,
        "model_rms": 0.12,
        "model_bias": -0.04,
        "n": 10,
    },
}


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    directory = tmp_path_factory.mktemp("run")
    config = tiny_model_config()
    fit(
        SyntheticGalaxies(n=8, size=32),
        directory,
        train_config=TrainConfig(epochs=1, batch_size=8, val_fraction=0.25),
        model_config=config,
        device="cpu",
        progress=False,
        data_description="8 synthetic blobs",
    )
    return directory


def test_export_writes_the_hub_layout_with_a_model_card(run, tmp_path):
    metrics_file = tmp_path / "evaluation.json"
    metrics_file.write_text(json.dumps(METRICS))
    out = export_run(
        run, tmp_path / "hub", metrics=metrics_file, name="picasso-test", revision="v1"
    )
    assert sorted(p.name for p in out.iterdir()) == sorted(HUB_FILES)
    model = load_model(out)
    assert model.name == "picasso-test" and model.revision == "v1"
    assert (
        model.config.provenance["metrics"]["properties"]["stellar_mass"]["pixel"]["rms"]
        == 0.123
    )
    reference, _ = model_from_checkpoint(run)
    for key, value in reference.network.state_dict().items():
        torch.testing.assert_close(
            model.network.state_dict()[key], value, rtol=0, atol=0
        )
    card = (out / "README.md").read_text()
    assert card.startswith("---\nlicense: bsd-3-clause")
    assert "8 synthetic blobs" in card  # training data
    assert "AdamW" in card and "- lr: 0.0003" in card  # recipe
    assert "| stellar_mass | 0.123 | -0.045 | 0.087 | 0.012 | 0.61 | 0.90 |" in card
    assert "Colour-M/L baseline" in card
    assert "mocks and real SDSS" in card  # the mock-to-real gap
    assert "arXiv:2111.01154" in card and "Buck" in card
    with pytest.raises(FileExistsError):
        export_run(run, out)


def test_export_keeps_the_fitted_uncertainty_scales(run, tmp_path):
    finished = load_model(run / "model")
    scales = {
        name: spec["sigma_scale"]
        for name, spec in finished.config.properties.items()
        if "sigma_scale" in spec
    }
    assert scales  # fitted at the end of the run
    exported = load_model(export_run(run, tmp_path / "hub", revision="v2"))
    for name, scale in scales.items():
        assert exported.config.properties[name]["sigma_scale"] == scale
        assert exported.network.heads[name].sigma_scale == scale
    assert exported.revision == "v2"


def test_export_needs_a_run(tmp_path):
    with pytest.raises(PicassoInputError, match="no checkpoint"):
        export_run(tmp_path, tmp_path / "hub")


class FakeHfApi:
    calls = []

    def __init__(self, token=None):
        self.token = token

    def create_repo(self, repo_id, **kwargs):
        self.calls.append(("create_repo", repo_id, kwargs))

    def upload_folder(self, *, folder_path, repo_id, **kwargs):
        files = sorted(p.name for p in Path(folder_path).rglob("*") if p.is_file())
        self.calls.append(("upload_folder", repo_id, files, self.token, kwargs))
        return "commit-url"


@pytest.fixture
def fake_hub(monkeypatch):
    import huggingface_hub

    FakeHfApi.calls = []
    monkeypatch.setattr(huggingface_hub, "HfApi", FakeHfApi)
    return FakeHfApi


def test_push_uploads_only_the_three_model_files(run, tmp_path, fake_hub, monkeypatch):
    out = export_run(run, tmp_path / "hub")
    (out / "notes.txt").write_text("private")  # must not be uploaded
    (out / "checkpoint.safetensors").write_bytes(b"x")
    monkeypatch.setenv("HF_TOKEN", "hf_test")
    assert push_to_hub(out, "someone/picasso-test", revision="dev") == "commit-url"
    create, upload = fake_hub.calls
    assert create[:2] == ("create_repo", "someone/picasso-test")
    assert upload[1] == "someone/picasso-test"
    assert upload[2] == sorted(["config.json", "model.safetensors", "README.md"])
    assert upload[3] == "hf_test"
    assert upload[4]["revision"] == "dev"


def test_push_command_and_its_errors(run, tmp_path, fake_hub, monkeypatch):
    out = export_run(run, tmp_path / "hub")
    runner = CliRunner()
    monkeypatch.delenv("HF_TOKEN", raising=False)
    result = runner.invoke(push_command, [str(out), "--repo-id", "a/b"])
    assert result.exit_code != 0 and "HF_TOKEN" in result.output
    assert fake_hub.calls == []
    monkeypatch.setenv("HF_TOKEN", "hf_test")
    (out / "README.md").unlink()
    result = runner.invoke(push_command, [str(out), "--repo-id", "a/b"])
    assert result.exit_code != 0 and "lacks README.md" in result.output
    out = export_run(run, tmp_path / "hub2")
    result = runner.invoke(push_command, [str(out), "--repo-id", "a/b", "--private"])
    assert result.exit_code == 0, result.output
    assert fake_hub.calls[0][2]["private"] is True
