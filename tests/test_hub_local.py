import json

import pytest
import torch

from picasso_astro import PicassoModelError, PicassoWarning, load_model
from picasso_astro.config import ModelConfig
from picasso_astro.hub import BUNDLED_MODEL_DIR, PicassoModel, save_model


def test_save_and_load_round_trip(tmp_path):
    config = ModelConfig(width=4, depth=1, groups=2, name="round-trip")
    original = PicassoModel(config.build_network(), config)
    save_model(original, tmp_path, model_card="# card\n")
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "README.md",
        "config.json",
        "model.safetensors",
    ]
    loaded = load_model(tmp_path)
    assert loaded.config == config
    for key, value in original.network.state_dict().items():
        assert torch.equal(value, loaded.network.state_dict()[key])


def test_save_refuses_to_overwrite(tiny_model_dir):
    loaded = load_model(tiny_model_dir)
    with pytest.raises(FileExistsError, match="overwrite"):
        save_model(loaded, tiny_model_dir)


def test_config_weights_mismatch_is_refused(tmp_path):
    config = ModelConfig(width=4, depth=1, groups=2)
    save_model(PicassoModel(config.build_network(), config), tmp_path)
    wider = ModelConfig(width=8, depth=1, groups=2).to_dict()
    (tmp_path / "config.json").write_text(json.dumps(wider))
    with pytest.raises(PicassoModelError, match="do not match.*export the model"):
        load_model(tmp_path)


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda c: c.update(format_version=99), "format_version"),
        (lambda c: c.update(bands=["g", "r"]), "bands"),
        (lambda c: c["properties"].update(dust={"bin_edges": [0, 1]}), "unknown"),
        (lambda c: c["properties"]["sfr"].update(bin_edges=[2, 1]), "increasing"),
        (lambda c: c.pop("architecture"), "architecture"),
    ],
)
def test_bad_config_fields_are_named(tiny_model_dir, tmp_path, edit, message):
    config = json.loads((tiny_model_dir / "config.json").read_text())
    edit(config)
    (tmp_path / "config.json").write_text(json.dumps(config))
    (tmp_path / "model.safetensors").write_bytes(
        (tiny_model_dir / "model.safetensors").read_bytes()
    )
    with pytest.raises(PicassoModelError, match=message) as info:
        load_model(tmp_path)
    assert "export the model" in str(info.value)


def test_damaged_files_are_reported(tiny_model_dir, tmp_path):
    (tmp_path / "config.json").write_text("{not json")
    with pytest.raises(PicassoModelError, match="not valid JSON.*export"):
        load_model(tmp_path)
    (tmp_path / "config.json").write_text((tiny_model_dir / "config.json").read_text())
    with pytest.raises(PicassoModelError, match="incomplete; put back"):
        load_model(tmp_path)
    (tmp_path / "model.safetensors").write_bytes(b"\x00" * 100)
    with pytest.raises(PicassoModelError, match="safetensors"):
        load_model(tmp_path)


def test_unknown_model_name(tmp_path):
    with pytest.raises(PicassoModelError, match="neither"):
        load_model(tmp_path / "nowhere")


@pytest.mark.skipif(
    (BUNDLED_MODEL_DIR / "model.safetensors").exists(), reason="a default model ships"
)
def test_missing_default_model_says_so():
    with pytest.raises(PicassoModelError, match="no trained default model"):
        load_model()


def _copy_bundled(tmp_path):
    import shutil

    from picasso_astro.hub import BUNDLED_MODEL_DIR

    copy = tmp_path / "model"
    shutil.copytree(BUNDLED_MODEL_DIR, copy)
    return copy


def test_a_flipped_byte_in_the_weights_is_refused(tmp_path):
    from picasso_astro.hub import load_model_directory

    copy = _copy_bundled(tmp_path)
    weights = copy / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1000] ^= 0x01  # a tensor's byte: the file still reads
    weights.write_bytes(bytes(data))
    with pytest.raises(
        PicassoModelError, match="has changed since the model was saved.*download"
    ):
        load_model_directory(copy)


def test_an_edited_config_is_refused(tmp_path):
    from picasso_astro.hub import load_model_directory

    copy = _copy_bundled(tmp_path)
    path = copy / "config.json"
    config = json.loads(path.read_text())
    config["input_scaling"]["softening"]["r"] *= 10
    path.write_text(json.dumps(config))
    with pytest.raises(
        PicassoModelError, match="not the one these weights were.*export the model"
    ):
        load_model_directory(copy)


def test_bin_edges_have_one_source_of_truth(tmp_path):
    from safetensors.torch import load_file, save_file

    from picasso_astro.hub import INTEGRITY_KEY, load_model_directory

    copy = _copy_bundled(tmp_path)
    # An older model: no checksums in either file to catch the edit.
    weights = copy / "model.safetensors"
    save_file(load_file(weights), weights)
    path = copy / "config.json"
    config = json.loads(path.read_text())
    del config[INTEGRITY_KEY]
    edges = config["properties"]["sfr"]["bin_edges"]
    edges[0] -= 1.0
    path.write_text(json.dumps(config))
    with (
        pytest.warns(PicassoWarning, match="carry no checksums"),
        pytest.raises(PicassoModelError, match="bin edges of sfr.*restore"),
    ):
        load_model_directory(copy)


def test_the_bundled_model_is_checked(tmp_path):
    from picasso_astro.hub import BUNDLED_MODEL_DIR, INTEGRITY_KEY

    config = json.loads((BUNDLED_MODEL_DIR / "config.json").read_text())
    assert len(config[INTEGRITY_KEY]["weights_sha256"]) == 64
