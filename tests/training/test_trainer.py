import json
import socket

import numpy as np
import pytest
import torch
from synthetic import PROPERTY_NAMES, SyntheticGalaxies

from picasso_astro.config import ModelConfig
from picasso_astro.exceptions import PicassoInputError
from picasso_astro.hub import load_model
from picasso_astro.preprocess import to_model_input
from picasso_astro.properties import PROPERTIES
from picasso_astro.training._data import (
    TrainingPairs,
    dataset_property_names,
    normalize_item,
    split_indices,
)
from picasso_astro.training._loss import pixel_weights, quantized_regression_loss
from picasso_astro.training.dataset import CombinedDataset
from picasso_astro.training.trainer import (
    TrainConfig,
    fit,
    learning_rate,
    load_checkpoint,
    resolve_device,
)


def tiny_model_config(names=PROPERTY_NAMES):
    return ModelConfig(
        properties={n: {"bin_edges": list(PROPERTIES[n].bin_edges)} for n in names},
        width=4,
        depth=2,
        groups=2,
        name="tiny",
    )


@pytest.fixture(scope="module")
def galaxies():
    return SyntheticGalaxies(n=16, size=32, seed=0)


# ----------------------------------------------------------------------- loss


def _perfect_logits(t, edges):
    """Head outputs that put all weight on t's bin with the right residual."""
    k = int(np.searchsorted(edges, t, side="right") - 1)
    k = min(k, len(edges) - 2)
    rho = (t - edges[k]) / (edges[k + 1] - edges[k])
    bins = torch.full((1, len(edges) - 1, 1, 1), -30.0)
    bins[0, k] = 30.0
    rho = min(max(rho, 1e-6), 1 - 1e-6)
    residual = torch.full_like(bins, np.log(rho / (1 - rho)))
    return bins, residual


@pytest.mark.parametrize("t", [3.0, 5.5, 7.0, 10.999, 11.0])
def test_loss_vanishes_for_a_perfect_prediction(t):
    edges = np.array(PROPERTIES["stellar_mass"].bin_edges)
    outputs = {"stellar_mass": _perfect_logits(t, edges)}
    truth = torch.full((1, 1, 1, 1), t)
    weight = torch.ones_like(truth)
    total, per = quantized_regression_loss(
        outputs, truth, weight, {"stellar_mass": torch.as_tensor(edges)}
    )
    assert float(total) < 1e-6
    assert set(per) == {"stellar_mass"}


def test_loss_terms_and_weights():
    edges = torch.tensor([0.0, 1.0, 2.0])
    bins = torch.zeros(1, 2, 1, 2)  # q = (1/2, 1/2)
    residual = torch.zeros(1, 2, 1, 2)  # r = 1/2: centres 0.5 and 1.5 -> value 1.0
    truth = torch.tensor([[[[0.25, 7.0]]]])  # the second pixel carries no weight
    weight = torch.tensor([[[[1.0, 0.0]]]])
    total, _ = quantized_regression_loss(
        {"p": (bins, residual)}, truth, weight, {"p": edges}
    )
    # CE = log 2; residual target 0.25 vs 0.5; value 1.0 vs 0.25.
    expected = np.log(2) + 0.25**2 + 0.75**2
    assert float(total) == pytest.approx(expected, rel=1e-5)
    only_ce, _ = quantized_regression_loss(
        {"p": (bins, residual)},
        truth,
        weight,
        {"p": edges},
        residual_weight=0.0,
        value_weight=0.0,
    )
    assert float(only_ce) == pytest.approx(np.log(2), rel=1e-5)


def test_pixel_weights_balance_sky_and_drop_masked_and_undefined():
    names = ("stellar_mass", "stellar_age")
    truth = np.full((2, 10, 10), 3.0, np.float32)
    truth[0, :2] = 8.0  # 20 galaxy pixels
    truth[1] = 8.0
    valid = np.zeros((2, 10, 10), bool)
    valid[:, :2] = True
    mask = np.zeros((10, 10), bool)
    mask[0, 0] = True
    mask[9, 9] = True
    w = pixel_weights(truth, valid, mask, names, sky_weight=0.1)
    assert w[0, 0, 0] == 0 and w[0, 9, 9] == 0  # masked
    galaxy = w[0][valid[0]].sum()
    sky = w[0][~valid[0]].sum()
    assert galaxy == 19
    assert sky == pytest.approx(0.1 * 19)
    # age is not a surface density: undefined pixels are excluded
    assert w[1][~valid[1]].sum() == 0
    # without truth_valid: valid where the truth is above the lowest bin edge
    w_auto = pixel_weights(truth, None, mask, names, sky_weight=0.0)
    assert w_auto[0].sum() == 19


def test_balance_lifts_the_rare_pixels_of_a_bright_centre():
    truth = np.full((1, 20, 20), 6.5, np.float32)
    truth[0, 9:11, 9:11] = 10.5  # four central pixels in a bin of their own
    valid = np.ones_like(truth, bool)
    mask = np.zeros((20, 20), bool)
    plain = pixel_weights(truth, valid, mask, ("stellar_mass",), sky_weight=0.0)
    balanced = pixel_weights(
        truth, valid, mask, ("stellar_mass",), sky_weight=0.0, balance=0.5
    )
    assert np.all(plain[0] == 1)
    centre, outskirts = balanced[0, 10, 10], balanced[0, 0, 0]
    assert centre / outskirts == pytest.approx(np.sqrt(396 / 4), rel=1e-5)
    assert balanced[0].mean() == pytest.approx(1.0, rel=1e-5)
    # one odd pixel in a bin of its own is capped
    truth[0, 0, 0] = 3.5
    capped = pixel_weights(truth, valid, mask, ("stellar_mass",), balance=1.0)
    assert capped.max() <= 10.0


# ------------------------------------------------------------------ the data


def test_normalize_item_adapts_keys_and_rejects_bad_items():
    item = {
        "image": np.ones((5, 8, 8)),
        "targets": np.zeros((2, 8, 8)),
        "noise": np.ones(5),
    }
    item["image"][0, 1, 1] = np.nan
    out = normalize_item(item)
    assert out["images"].dtype == np.float32
    assert out["mask"][1, 1] and out["mask"].sum() == 1
    assert out["noise"].shape == (5, 1, 1)
    assert out["truth_valid"] is None
    with pytest.raises(PicassoInputError, match="lacks 'images' or 'truth'"):
        normalize_item({"images": np.ones((5, 8, 8))})
    with pytest.raises(PicassoInputError, match=r"images must have shape \(5, H, W\)"):
        normalize_item({"images": np.ones((3, 8, 8)), "truth": np.ones((1, 8, 8))})


def test_property_names_from_manifest_attrs():
    class Sharded:
        attrs = {"property_names": ["sfr", "hi"]}

    assert dataset_property_names(Sharded()) == ("sfr", "hi")
    with pytest.raises(PicassoInputError, match="property_names"):
        dataset_property_names(object())


def test_split_is_reproducible_and_disjoint():
    train, val = split_indices(20, val_fraction=0.2, seed=3)
    assert split_indices(20, val_fraction=0.2, seed=3) == (train, val)
    assert len(val) == 4 and not set(train) & set(val)
    assert sorted(train + val) == list(range(20))


def test_training_pairs_scaling_padding_and_augmentation(galaxies):
    plain = TrainingPairs(galaxies, PROPERTY_NAMES, multiple=1)
    item = galaxies[0]
    np.testing.assert_array_equal(
        plain[0]["x"], to_model_input(item["images"], item["mask"])
    )
    padded = TrainingPairs(galaxies, ["sfr"], multiple=5)[0]
    assert padded["x"].shape == (6, 35, 35)
    assert padded["truth"].shape == (1, 35, 35)
    assert np.all(padded["x"][5, 32:] == 0) and np.all(padded["weight"][:, 32:] == 0)

    aug = TrainingPairs(galaxies, PROPERTY_NAMES, augment=True, seed=1)
    aug.set_epoch(0)
    first = aug[3]
    np.testing.assert_array_equal(first["x"], aug[3]["x"])  # reproducible
    aug.set_epoch(1)
    assert not np.array_equal(first["x"], aug[3]["x"])  # a new draw
    # the truth follows the image: same rotation/flip of the same maps
    original = galaxies[3]["truth"]
    assert any(
        np.array_equal(first["truth"], np.rot90(m, k, axes=(-2, -1)))
        for m in (original, original[..., ::-1])
        for k in range(4)
    )


def test_brightness_augmentation_scales_flux_and_surface_densities_together():
    item = {
        "images": np.full((5, 16, 16), 2.0, np.float32),
        "mask": np.zeros((16, 16), bool),
        "truth": np.stack([np.full((16, 16), v, np.float32) for v in (8.0, -2.0, 9.5)]),
        "noise": np.full(5, 1e-6, np.float32),
    }
    names = ("stellar_mass", "sfr", "stellar_age")

    class One:
        property_names = names

        def __len__(self):
            return 1

        def __getitem__(self, index):
            return item

    pairs = TrainingPairs(One(), names, augment=True, brightness=0.5, seed=3)
    shifts = []
    for epoch in range(6):
        pairs.set_epoch(epoch)
        out = pairs[0]
        flux = np.sinh(out["x"][2]) * 0.12  # undo the asinh scaling of r
        dex = np.log10(np.median(flux) / 2.0)
        np.testing.assert_allclose(out["truth"][0], 8.0 + dex, atol=2e-3)
        np.testing.assert_allclose(out["truth"][1], -2.0 + dex, atol=2e-3)
        np.testing.assert_allclose(out["truth"][2], 9.5)  # age does not scale
        shifts.append(dex)
    assert max(np.abs(shifts)) <= 0.5 and np.ptp(shifts) > 0.1


def test_random_crops_cut_image_truth_and_weights_alike(galaxies):
    pairs = TrainingPairs(galaxies, PROPERTY_NAMES, augment=True, crop=16, seed=2)
    whole = TrainingPairs(galaxies, PROPERTY_NAMES, augment=True, crop=0, seed=2)
    offsets = set()
    for epoch in range(4):
        pairs.set_epoch(epoch)
        whole.set_epoch(epoch)
        out, full = pairs[5], whole[5]
        assert out["x"].shape == (6, 16, 16) and out["truth"].shape[1:] == (16, 16)
        assert out["weight"].shape == out["truth"].shape
        # the crop is a window of the same augmented draw
        hits = [
            (y, x)
            for y in range(17)
            for x in range(17)
            if np.array_equal(out["truth"], full["truth"][:, y : y + 16, x : x + 16])
        ]
        assert hits
        offsets.update(hits)
    assert len(offsets) > 1  # the window moves
    with pytest.raises(PicassoInputError, match="crop must be"):
        TrainConfig(crop=-1)


def test_neighbours_with_truth_train_on_it():
    names = ("stellar_mass", "sfr")
    owner = np.zeros((16, 16), np.uint8)
    owner[4:12, 4:12] = 1
    owner[0:4, 12:16] = 2  # a neighbour with truth
    owner[12:16, 0:4] = 3  # a star: no truth
    item = {
        "images": np.full((5, 16, 16), 1.0, np.float32),
        "mask": np.zeros((16, 16), bool),
        "truth": np.stack([np.full((16, 16), 8.0), np.full((16, 16), -2.0)]),
        "contaminant": owner >= 2,
        "owner": owner,
        "neighbour_truth": np.stack([np.full((16, 16), 7.0), np.full((16, 16), -3.0)]),
    }

    class One:
        property_names = names

        def __len__(self):
            return 1

        def __getitem__(self, index):
            return item

    out = TrainingPairs(One(), names)[0]
    neighbour, star = owner == 2, owner == 3
    np.testing.assert_array_equal(out["truth"][:, neighbour], [[7.0] * 16, [-3.0] * 16])
    np.testing.assert_array_equal(out["truth"][0, owner == 1], 8.0)
    assert np.all(out["weight"][:, neighbour] > 0)
    assert np.all(out["weight"][:, star] == 0)
    # without neighbour truth, neighbours weigh nothing, as before
    del item["neighbour_truth"]
    assert np.all(TrainingPairs(One(), names)[0]["weight"][:, neighbour] == 0)


def test_unknown_property_is_a_clear_error(galaxies):
    with pytest.raises(PicassoInputError, match="no truth for hi"):
        TrainingPairs(galaxies, ["stellar_mass", "hi"])


# ------------------------------------------------------------------ training


def test_learning_rate_schedule():
    kw = {"total_steps": 100, "lr": 1.0, "warmup_fraction": 0.1}
    kw["min_lr_fraction"] = 0.01
    assert learning_rate(0, **kw) == pytest.approx(0.1)
    assert learning_rate(9, **kw) == pytest.approx(1.0)
    assert learning_rate(99, **kw) < 0.02
    assert learning_rate(50, **kw) < learning_rate(20, **kw)


def test_resolve_device():
    assert resolve_device("cpu").type == "cpu"
    assert resolve_device("auto").type == (
        "cuda" if torch.cuda.is_available() else "cpu"
    )
    with pytest.raises(PicassoInputError, match="unknown device"):
        resolve_device("abacus")


def test_fit_learns_and_writes_a_run(galaxies, tmp_path):
    # brightness off: the synthetic truth is not proportional to the flux
    config = TrainConfig(
        epochs=6, batch_size=4, lr=1e-2, val_fraction=0.25, brightness=0.0
    )
    result = fit(
        galaxies,
        tmp_path,
        train_config=config,
        model_config=tiny_model_config(),
        device="cpu",
        progress=False,
    )
    losses = [r["train_loss"] for r in result.history]
    assert len(losses) == 6
    assert losses[-1] < 0.7 * losses[0]
    assert result.history[-1]["val_loss"] < result.history[0]["val_loss"]
    log = [
        json.loads(line) for line in (tmp_path / "log.jsonl").read_text().splitlines()
    ]
    assert [r["epoch"] for r in log] == [1, 2, 3, 4, 5, 6]
    assert (tmp_path / "log.csv").read_text().startswith("epoch,step,lr,train_loss")
    split = json.loads((tmp_path / "split.json").read_text())
    assert len(split["val"]) == 4 and len(split["train"]) == 12
    model = load_model(tmp_path / "model")
    assert model.property_names == PROPERTY_NAMES
    assert model.config.provenance["training"]["recipe"]["lr"] == 1e-2
    state = model.network.state_dict()
    for key, value in result.model.network.state_dict().items():
        torch.testing.assert_close(state[key], value)


def test_fit_starts_from_a_trained_model(galaxies, tmp_path):
    config = TrainConfig(epochs=2, batch_size=4, lr=1e-2, val_fraction=0.25)
    first = fit(
        galaxies,
        tmp_path / "first",
        train_config=config,
        model_config=tiny_model_config(),
        device="cpu",
        progress=False,
    )
    tuned = TrainConfig(
        epochs=1, batch_size=4, lr=1e-9, val_fraction=0.25, crop=16, context=8
    )
    second = fit(
        galaxies,
        tmp_path / "second",
        train_config=tuned,
        model_config=ModelConfig(name="tuned", revision="0.1"),
        device="cpu",
        progress=False,
        initial_model=tmp_path / "first" / "model",
    )
    assert second.model.name == "tuned" and second.model.revision == "0.1"
    # the frame context it is to be used with is recorded, 0 is not written
    assert "context" not in first.model.config.to_dict()["preprocessing"]
    assert second.model.config.preprocessing.context == 8
    assert load_model(tmp_path / "second" / "model").config.preprocessing.context == 8
    assert (
        second.model.config.to_dict()["architecture"]
        == (first.model.config.to_dict()["architecture"])
    )
    start = second.model.config.provenance["initial_model"]
    assert start["name"] == "tiny" and start["source"].endswith("model")
    # a negligible learning rate: the weights are the first run's
    before = first.model.network.state_dict()
    for key, value in second.model.network.state_dict().items():
        if key.endswith(("weight", "bias")) and "norm" not in key:
            torch.testing.assert_close(value, before[key], atol=1e-5, rtol=0)
    assert (
        load_model(tmp_path / "second" / "model").config.provenance["initial_model"][
            "revision"
        ]
        == "local"
    )


def _weights(run):
    _, tensors = load_checkpoint(run)
    return {k: v for k, v in tensors.items() if not k.startswith("rng.")}


def test_resume_is_exact(galaxies, tmp_path):
    torch.use_deterministic_algorithms(True)
    try:
        options = {
            "model_config": tiny_model_config(),
            "device": "cpu",
            "progress": False,
        }
        config = TrainConfig(epochs=2, batch_size=4, lr=5e-3, val_fraction=0.25)
        fit(galaxies, tmp_path / "straight", train_config=config, **options)
        fit(
            galaxies,
            tmp_path / "resumed",
            train_config=config,
            stop_after=1,
            **options,
        )
        state, _ = load_checkpoint(tmp_path / "resumed")
        assert state["epoch"] == 1
        assert not (tmp_path / "resumed" / "model").exists()  # not finished yet
        fit(galaxies, tmp_path / "resumed", resume=True, device="cpu", progress=False)
    finally:
        torch.use_deterministic_algorithms(False)
    straight, resumed = _weights(tmp_path / "straight"), _weights(tmp_path / "resumed")
    assert straight.keys() == resumed.keys()
    assert any(k.startswith("optimizer.state.") for k in straight)
    for key in straight:
        torch.testing.assert_close(resumed[key], straight[key], rtol=0, atol=1e-7)
    logs = (tmp_path / "resumed" / "log.jsonl").read_text().splitlines()
    assert [json.loads(line)["epoch"] for line in logs] == [1, 2]
    assert (tmp_path / "resumed" / "model" / "model.safetensors").is_file()


def test_checkpoint_is_json_and_safetensors_and_checked(galaxies, tmp_path):
    config = TrainConfig(epochs=1, batch_size=8, val_fraction=0.0, augment=False)
    fit(
        galaxies,
        tmp_path,
        train_config=config,
        model_config=tiny_model_config(["stellar_mass"]),
        device="cpu",
        progress=False,
    )
    state = json.loads((tmp_path / "checkpoint.json").read_text())
    assert state["epoch"] == 1 and state["global_step"] == 2
    assert state["optimizer"]["param_groups"][0]["weight_decay"] == config.weight_decay
    with pytest.raises(PicassoInputError, match="already holds a training run"):
        fit(galaxies, tmp_path, train_config=config, device="cpu", progress=False)
    weights = tmp_path / "checkpoint.safetensors"
    weights.write_bytes(weights.read_bytes()[:-1] + b" ")
    with pytest.raises(PicassoInputError, match="does not match"):
        load_checkpoint(tmp_path)
    with pytest.raises(PicassoInputError, match="no checkpoint"):
        load_checkpoint(tmp_path / "elsewhere")


def test_fit_under_distributed_data_parallel_with_gloo(galaxies, tmp_path):
    import torch.distributed as dist

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    dist.init_process_group(
        "gloo", init_method=f"tcp://127.0.0.1:{port}", rank=0, world_size=1
    )
    try:
        config = TrainConfig(epochs=1, batch_size=8, val_fraction=0.25)
        result = fit(
            galaxies,
            tmp_path,
            train_config=config,
            model_config=tiny_model_config(),
            device="cpu",
            progress=False,
        )
    finally:
        dist.destroy_process_group()
    assert result.history[0]["step"] == 2
    assert (tmp_path / "model" / "config.json").is_file()


def test_contaminated_pixels_carry_no_loss_weight(galaxies):
    class WithStars:
        property_names = galaxies.property_names

        def __len__(self):
            return 1

        def __getitem__(self, index):
            item = galaxies[0]
            item["contaminant"] = np.zeros((32, 32), bool)
            item["contaminant"][10:14, 10:14] = True
            return item

    pair = TrainingPairs(WithStars(), ["stellar_mass"])[0]
    assert np.all(pair["weight"][:, 10:14, 10:14] == 0)
    assert np.all(pair["x"][5, 10:14, 10:14] == 1)  # still an unmasked input


def test_time_limit_shortens_the_run_and_its_schedule(galaxies, tmp_path):
    options = {"model_config": tiny_model_config(), "device": "cpu", "progress": False}
    config = TrainConfig(epochs=3, batch_size=4, lr=5e-3, val_fraction=0.25)
    fit(galaxies, tmp_path / "long", train_config=config, time_limit=1e6, **options)
    config = TrainConfig(epochs=3, batch_size=4, lr=5e-3, val_fraction=0.25)
    result = fit(
        galaxies, tmp_path / "short", train_config=config, time_limit=1e-6, **options
    )
    assert [record["epoch"] for record in result.history] == [1]
    state, _ = load_checkpoint(tmp_path / "short")
    assert state["train_config"]["epochs"] == 1
    assert state["schedule"]["total_steps"] == state["global_step"]
    training = load_model(tmp_path / "short" / "model").config.provenance["training"]
    assert training["epochs_done"] == 1
    assert "sigma_scale" in training  # finished: calibrated and written
    long_state, _ = load_checkpoint(tmp_path / "long")
    assert long_state["epoch"] == long_state["train_config"]["epochs"] == 3
    # A limit that leaves time enough keeps the run's length when it stops early.
    config = TrainConfig(epochs=3, batch_size=4, lr=5e-3, val_fraction=0.25)
    fit(
        galaxies,
        tmp_path / "paused",
        train_config=config,
        stop_after=1,
        time_limit=1e6,
        **options,
    )
    paused, _ = load_checkpoint(tmp_path / "paused")
    assert paused["epoch"] == 1 and paused["train_config"]["epochs"] == 3


class _Renamed(SyntheticGalaxies):
    property_names = ("stellar_mass", "sfr", "hi")


def _larger(n, seed=0):
    # far from the blob its flux underflows to 0, and the colour to 0 / 0
    with np.errstate(invalid="ignore", divide="ignore"):
        return SyntheticGalaxies(n=n, size=48, seed=seed)


def test_combined_datasets_index_through_and_must_be_made_alike():
    small, large = SyntheticGalaxies(n=3, size=32), _larger(2)
    both = CombinedDataset([small, large])
    assert len(both) == 5
    np.testing.assert_array_equal(both[3]["images"], large[0]["images"])
    np.testing.assert_array_equal(both[-1]["images"], large[1]["images"])
    assert both.image_sizes().tolist() == [32, 32, 32, 48, 48]
    assert both.attrs["sizes"] == [32, 48] and both.attrs["n"] == 5
    with pytest.raises(IndexError):
        both[5]
    with pytest.raises(PicassoInputError, match="differ in property_names"):
        CombinedDataset([small, _Renamed(n=2)])


def _fit_tiny(dataset, out, config):
    return fit(
        dataset,
        out,
        train_config=config,
        model_config=tiny_model_config(),
        device="cpu",
        progress=False,
    )


def test_fit_on_datasets_of_two_sizes_needs_crops_that_fit_both(tmp_path):
    both = CombinedDataset([SyntheticGalaxies(n=8, size=32), _larger(8, seed=1)])
    whole = TrainConfig(epochs=1, batch_size=4, val_fraction=0.25, brightness=0.0)
    with pytest.raises(PicassoInputError, match="--crop 32 or less"):
        _fit_tiny(both, tmp_path / "whole", whole)
    cropped = TrainConfig(
        epochs=1, batch_size=4, val_fraction=0.25, brightness=0.0, crop=32
    )
    result = _fit_tiny(both, tmp_path / "crops", cropped)
    # validation ran on whole images of both sizes, in batches of one size
    split = json.loads((tmp_path / "crops" / "split.json").read_text())
    assert {both.image_sizes()[i] for i in split["val"]} == {32, 48}
    assert np.isfinite(result.history[-1]["val_loss"])
    assert split["data"] == [None, None]
    # predictions cut galaxies out at the smaller size
    assert result.model.config.cutout == {"kind": "fixed", "size": 32}
