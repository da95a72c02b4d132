"""scripts/train_on_gpu.sh, run end to end on the CPU with a tiny model."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "train_on_gpu.sh"


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
def test_the_gpu_script_makes_mocks_trains_and_leaves_a_model(tmp_path):
    out, work = tmp_path / "out", tmp_path / "work"
    out.mkdir()
    python = Path(sys.executable).parent
    env = dict(
        os.environ,
        OUT=str(out),
        WORK=str(work),
        DEVICE="cpu",
        PATH=f"{python}{os.pathsep}{os.environ['PATH']}",
    )
    tiny = ["--epochs", "2", "--width", "4", "--depth", "2", "--batch-size", "4"]
    result = subprocess.run(
        ["bash", str(SCRIPT), "8", "300", "600", *tiny, "--val-fraction", "0.25"],
        cwd=SCRIPT.parents[1],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "mocks: 8 galaxies in 1 shards" in result.stdout
    manifest = json.loads((work / "mocks" / "dataset.json").read_text())
    assert manifest["n"] == 8
    config = json.loads((out / "config.json").read_text())
    assert config["architecture"]["width"] == 4
    assert config["provenance"]["training"]["epochs_done"] == 2
    # The weights come back in parts that join to the model's own file.
    parts = sorted(out.glob("weights.part*"))
    joined = b"".join(part.read_bytes() for part in parts)
    assert joined == (work / "run" / "model" / "model.safetensors").read_bytes()
    assert (out / "log.csv").read_text().count("\n") == 3
