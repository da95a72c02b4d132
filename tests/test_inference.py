import numpy as np
import pytest
import torch

from picasso_astro import _inference, predict
from picasso_astro._inference import (
    AUTO_BATCH_LIMIT,
    activation_bytes,
    auto_batch_size,
    free_memory,
    resolve_precision,
    run_network,
)
from picasso_astro.hub import load_model

CPU = torch.device("cpu")
CUDA = torch.device("cuda")


@pytest.fixture(scope="module")
def network(tiny_model_dir):
    return load_model(tiny_model_dir).network


def test_free_memory_on_cpu_is_positive():
    assert free_memory(CPU) > 0


def test_auto_batch_size_is_positive_and_at_most_the_limit(network):
    batch = auto_batch_size(network, (64, 64), CPU)
    assert 1 <= batch <= AUTO_BATCH_LIMIT
    assert auto_batch_size(network, (64, 64), CPU, limit=3) <= 3


def test_auto_batch_size_scales_with_free_memory(network, monkeypatch):
    per_galaxy, _ = activation_bytes(network, (64, 64))
    monkeypatch.setattr(_inference, "free_memory", lambda device: 40 * per_galaxy)
    assert auto_batch_size(network, (64, 64), CUDA) == 10
    monkeypatch.setattr(_inference, "free_memory", lambda device: 4 * per_galaxy)
    assert auto_batch_size(network, (64, 64), CUDA) == 1
    monkeypatch.setattr(_inference, "free_memory", lambda device: 0)
    assert auto_batch_size(network, (64, 64), CPU) == 1
    monkeypatch.setattr(_inference, "free_memory", lambda device: None)
    assert auto_batch_size(network, (64, 64), CUDA) == AUTO_BATCH_LIMIT


def test_auto_batch_size_is_smaller_for_larger_images(network, monkeypatch):
    monkeypatch.setattr(_inference, "free_memory", lambda device: 2**30)
    small = auto_batch_size(network, (64, 64), CUDA, limit=10**6)
    large = auto_batch_size(network, (256, 256), CUDA, limit=10**6)
    assert large < small


def test_auto_batch_size_on_cpu_keeps_tensors_small(network, monkeypatch):
    monkeypatch.setattr(_inference, "free_memory", lambda device: 2**40)
    _, largest = activation_bytes(network, (512, 512))
    batch = auto_batch_size(network, (512, 512), CPU)
    assert batch * largest <= _inference.CPU_TENSOR_LIMIT


@pytest.mark.parametrize("bad", [0, -2, 2.5, "big", None, True])
def test_batch_size_is_validated(cutout_files, tiny_model_dir, bad):
    with pytest.raises(ValueError, match="positive integer or 'auto'"):
        predict(cutout_files, model=tiny_model_dir, batch_size=bad)


def test_precision_selection(monkeypatch):
    assert resolve_precision("auto", CPU) == torch.float32
    assert resolve_precision("float32", CUDA) == torch.float32
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda: True)
    assert resolve_precision("auto", CUDA) == torch.bfloat16
    assert resolve_precision("bfloat16", CUDA) == torch.bfloat16
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda: False)
    assert resolve_precision("auto", CUDA) == torch.float32
    with pytest.raises(ValueError, match="only supported on CUDA"):
        resolve_precision("bfloat16", CPU)
    with pytest.raises(ValueError, match="precision must be one of"):
        resolve_precision("float16", CPU)


def test_run_network_batches_give_the_same_maps(network):
    x = np.random.default_rng(0).normal(size=(5, 6, 40, 48)).astype(np.float32)
    reference = run_network(network, x, device=CPU, batch_size=5)
    for batch_size in (1, 2, "auto"):
        values, sigmas = run_network(network, x, device=CPU, batch_size=batch_size)
        np.testing.assert_allclose(values, reference[0], atol=1e-5)
        np.testing.assert_allclose(sigmas, reference[1], atol=1e-5)


def test_auto_batch_gives_the_same_maps_as_batches_of_one(
    cutout_files, tmp_path, tiny_model_dir
):
    files = []
    for galaxy in ("a", "b", "c"):
        for path in cutout_files:
            target = tmp_path / path.name.replace("gal1", f"gal{galaxy}")
            target.write_bytes(path.read_bytes())
            files.append(target)
    auto = predict(files, model=tiny_model_dir, device="cpu")
    single = predict(files, model=tiny_model_dir, device="cpu", batch_size=1)
    assert len(auto) == len(single) == 3
    for first, second in zip(auto, single, strict=True):
        for name in first:
            np.testing.assert_allclose(first[name].data, second[name].data, atol=1e-5)
            np.testing.assert_allclose(
                first[name].uncertainty.array, second[name].uncertainty.array, atol=1e-5
            )
