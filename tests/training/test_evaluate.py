import json

import numpy as np
import pytest
from click.testing import CliRunner
from synthetic import PROPERTY_NAMES, SyntheticGalaxies, tiny_model_config

from picasso_astro.exceptions import PicassoInputError
from picasso_astro.training import _cli_train
from picasso_astro.training._cli_train import (
    calibrate_command,
    evaluate_command,
    export_command,
    fit_command,
)
from picasso_astro.training._npz_dataset import open_dataset, write_npz_dataset
from picasso_astro.training.evaluate import (
    evaluate,
    fit_colour_ml_baseline,
    format_table,
    half_mass_radius,
)
from picasso_astro.training.trainer import TrainConfig, fit


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    galaxies = SyntheticGalaxies(n=16, size=32, seed=0)
    run = tmp_path_factory.mktemp("run")
    config = tiny_model_config()
    fit(
        galaxies,
        run,
        train_config=TrainConfig(
            epochs=10, batch_size=4, lr=1e-2, val_fraction=0.25, brightness=0.0
        ),
        model_config=config,
        device="cpu",
        progress=False,
    )
    return galaxies, run


def test_half_mass_radius_of_a_uniform_disc():
    yy, xx = np.mgrid[0:201, 0:201]
    disc = (np.hypot(yy - 100, xx - 120) <= 60).astype(float)
    centre, radius = half_mass_radius(disc)
    assert centre == pytest.approx((100, 120), abs=1e-6)
    assert radius == pytest.approx(60 / np.sqrt(2), abs=1.0)


class LinearColourML:
    """Stellar-mass truth that is exactly 1 + 0.5 (g - i) - 0.4 mu_i."""

    property_names = ("stellar_mass",)

    def __init__(self, n=3):
        rng = np.random.default_rng(1)
        self.items = []
        for _ in range(n):
            images = 10 ** rng.uniform(-1, 1, (5, 16, 16)).astype(np.float32)
            g, i = images[1], images[3]
            colour = -2.5 * np.log10(g / i)
            mu_i = 22.5 - 2.5 * np.log10(i) + 5 * np.log10(0.396)
            truth = (1 + 0.5 * colour - 0.4 * mu_i)[None].astype(np.float32)
            self.items.append(
                {
                    "images": images,
                    "mask": np.zeros((16, 16), bool),
                    "truth": truth,
                    "truth_valid": np.ones_like(truth, bool),
                    "noise": np.full(5, 1e-3, np.float32),
                }
            )

    def __len__(self):
        return len(self.items)

    def __getitem__(self, index):
        return self.items[index]


class HiOnly:
    property_names = ("hi",)

    def __len__(self):
        return 1


def test_colour_ml_baseline_recovers_a_linear_relation():
    coefficients = fit_colour_ml_baseline(LinearColourML())
    np.testing.assert_allclose(coefficients, [1.0, 0.5, -0.4], atol=1e-4)
    with pytest.raises(PicassoInputError, match="needs stellar_mass"):
        fit_colour_ml_baseline(HiOnly())


def test_evaluate_metrics_plots_and_table(trained, tmp_path):
    galaxies, run = trained
    split = json.loads((run / "split.json").read_text())
    metrics = evaluate(
        run / "model",
        galaxies,
        indices=split["val"],
        baseline_indices=split["train"],
        device="cpu",
        out_dir=tmp_path,
    )
    assert set(metrics["properties"]) == set(PROPERTY_NAMES)
    assert metrics["n_galaxies"] == 4
    for name, m in metrics["properties"].items():
        assert m["pixel"]["n"] > 50, name
        assert m["pixel"]["rms"] >= abs(m["pixel"]["bias"])
        assert m["integrated"]["n"] == 4
        assert (
            0 <= m["calibration"]["coverage_68"] <= m["calibration"]["coverage_95"] <= 1
        )
        assert len(m["profile"]["bias"]) == len(m["profile"]["r_over_rhalf_edges"])
        assert len(m["decile_bias"]) == 10
        assert m["subsets"]["all"]["n"] == 4
        assert m["subsets"]["all"]["scatter"] == pytest.approx(
            m["integrated"]["scatter"]
        )
        assert m["subsets"]["starburst"]["n"] == 0  # no mock parameters
        assert m["peak"]["n"] == 4
        assert m["worst_pixel"]["all"]["n"] == 4
    # a few epochs give a useful stellar-mass map (truth spans about 3 dex)
    assert metrics["properties"]["stellar_mass"]["pixel"]["rms"] < 1.0
    base = metrics["baseline"]
    assert len(base["coefficients"]) == 3 and base["n"] > 0
    assert base["model_rms"] is not None
    saved = json.loads((tmp_path / "evaluation.json").read_text())
    assert saved == json.loads(json.dumps(metrics))
    assert (tmp_path / "residual_vs_radius.png").stat().st_size > 1000
    assert (tmp_path / "predicted_vs_true.png").stat().st_size > 1000
    table = format_table(metrics)
    assert "stellar_mass" in table and "colour-M/L baseline" in table


def test_evaluate_refuses_a_dataset_without_the_model_properties(trained):
    _, run = trained
    with pytest.raises(PicassoInputError, match="none of which the model predicts"):
        evaluate(run / "model", HiOnly(), device="cpu")


def test_cli_fit_evaluate_export(tmp_path, monkeypatch):
    galaxies = SyntheticGalaxies(n=8, size=32, seed=2)
    data = write_npz_dataset(tmp_path / "data", galaxies.items, galaxies.property_names)
    # Independent of which dataset module is present: use the npz reader.
    monkeypatch.setattr(
        _cli_train, "_open_dataset", lambda path, **_: open_dataset(path)
    )
    runner = CliRunner()
    run = tmp_path / "run"
    common = ["--data", str(data), "--device", "cpu", "--quiet"]
    args = [*common, "--out", str(run), "--epochs", "2", "--batch-size", "4"]
    args += ["--width", "4", "--depth", "2", "--val-fraction", "0.25"]
    result = runner.invoke(fit_command, [*args, "--stop-after", "1"])
    assert result.exit_code == 0, result.output
    again = runner.invoke(fit_command, args)
    assert again.exit_code != 0 and "--resume" in again.output
    result = runner.invoke(
        fit_command,
        [*common, "--out", str(run), "--resume"],  # the run's own 2 epochs
    )
    assert result.exit_code == 0, result.output
    assert "epoch 2" in result.output
    assert (run / "model" / "model.safetensors").is_file()

    result = runner.invoke(
        evaluate_command,
        ["--model", str(run), *common, "--out", str(tmp_path / "eval")],
    )
    assert result.exit_code == 0, result.output
    assert "stellar_mass" in result.output
    assert (
        json.loads((tmp_path / "eval" / "evaluation.json").read_text())["n_galaxies"]
        == 2
    )

    result = runner.invoke(
        export_command,
        [
            "--run",
            str(run),
            "--out",
            str(tmp_path / "hub"),
            "--metrics",
            str(tmp_path / "eval" / "evaluation.json"),
            "--revision",
            "v0.1",
        ],
    )
    assert result.exit_code == 0, result.output
    card = (tmp_path / "hub" / "README.md").read_text()
    assert "| stellar_mass |" in card and "revision v0.1" in card

    bad = runner.invoke(
        fit_command,
        ["--data", str(data), "--out", str(tmp_path / "r2"), "--device", "abacus"],
    )
    assert bad.exit_code != 0 and "unknown device" in bad.output


def test_calibrated_uncertainty_covers_68_percent_and_is_saved(trained, tmp_path):
    from picasso_astro.hub import load_model, save_model
    from picasso_astro.training.evaluate import calibrate_uncertainty

    galaxies, run = trained
    split = json.loads((run / "split.json").read_text())
    model = load_model(run / "model")
    # fit calibrated the model on its validation galaxies
    fitted = {n: model.config.properties[n].get("sigma_scale") for n in PROPERTY_NAMES}
    assert all(fitted.values())
    calibrated = evaluate(model, galaxies, indices=split["val"], device="cpu")
    for head in model.network.heads.values():
        head.sigma_scale = 1.0
    raw = evaluate(model, galaxies, indices=split["val"], device="cpu")
    scales = calibrate_uncertainty(model, galaxies, indices=split["val"], device="cpu")
    assert scales == pytest.approx(fitted)  # the same fit again
    for name in scales:
        coverage = calibrated["properties"][name]["calibration"]["coverage_68"]
        assert coverage == pytest.approx(0.6827, abs=0.01), name
        # the 95 % interval is fitted too, in sigmas: it covers 95 % there
        k95 = model.config.properties[name]["interval_95"]
        assert calibrated["properties"][name]["calibration"]["interval_95"] == k95
        coverage = calibrated["properties"][name]["calibration"]["coverage_95"]
        assert coverage == pytest.approx(0.95, abs=0.01), name
        sigma_ratio = (
            calibrated["properties"][name]["calibration"]["median_sigma"]
            / raw["properties"][name]["calibration"]["median_sigma"]
        )
        assert sigma_ratio == pytest.approx(scales[name], rel=1e-3)
    # the scales travel in config.json and are applied when loaded again
    save_model(model, tmp_path / "calibrated")
    again = load_model(tmp_path / "calibrated")
    for name, scale in scales.items():
        assert again.config.properties[name]["sigma_scale"] == scale
        assert again.network.heads[name].sigma_scale == scale
    assert again.config.intervals_95() == model.config.intervals_95()


def test_calibrate_command_writes_a_recalibrated_copy(trained, tmp_path):
    from picasso_astro.hub import load_model

    galaxies, run = trained
    data = tmp_path / "calibration"
    write_npz_dataset(data, galaxies.items, galaxies.property_names)
    before = (run / "model" / "config.json").read_text()
    runner = CliRunner()
    out = tmp_path / "recalibrated"
    args = ["--model", str(run), "--data", str(data), "--out", str(out)]
    result = runner.invoke(calibrate_command, [*args, "--device", "cpu"])
    assert result.exit_code == 0, result.output
    assert "interval_95" in result.output
    assert (run / "model" / "config.json").read_text() == before  # untouched
    model = load_model(out)
    fitted = model.config.provenance["calibration"]
    assert fitted["n_galaxies"] == len(galaxies)
    assert set(fitted["interval_95"]) == set(PROPERTY_NAMES)
    metrics = evaluate(model, galaxies, device="cpu")
    for name in PROPERTY_NAMES:
        calibration = metrics["properties"][name]["calibration"]
        assert calibration["coverage_68"] == pytest.approx(0.6827, abs=0.01)
        assert calibration["coverage_95"] == pytest.approx(0.95, abs=0.01)
    # never over the model it read, never over another without --overwrite
    same = runner.invoke(
        calibrate_command,
        [
            "--model",
            str(run / "model"),
            "--data",
            str(data),
            "--out",
            str(run / "model"),
        ],
    )
    assert same.exit_code != 0 and "own directory" in same.output
    again = runner.invoke(calibrate_command, [*args, "--device", "cpu"])
    assert again.exit_code != 0 and "--overwrite" in again.output


def test_galaxy_subsets_from_brightness_and_mock_parameters():
    from picasso_astro.training.evaluate import (
        BRIGHT_CENTRE_NMGY,
        SUBSETS,
        galaxy_subsets,
    )

    images = np.zeros((5, 32, 32), np.float32)
    item = {"images": images, "params": {"delta_ms": 0.7, "redshift": 0.05}}
    subsets = galaxy_subsets(item)
    assert {k: v for k, v in subsets.items() if v} == {"all": True, "starburst": True}
    assert set(subsets) == set(SUBSETS)
    images[2, 16, 16] = 2 * BRIGHT_CENTRE_NMGY
    item["params"] = {"quenched": 1.0, "sersic_n": 5.5, "redshift": 0.01}
    subsets = galaxy_subsets(item)
    assert subsets["bright_centre"] and subsets["early_type"] and subsets["nearby"]
    assert not subsets["starburst"]
    # Mocks 2.0 record their kind and sky.
    item["params"] = {"is_merger": 1.0, "is_agn": 0.0, "real_sky": 1.0}
    subsets = galaxy_subsets(item)
    assert subsets["kind_merger"] and subsets["real_sky"] and not subsets["kind_agn"]
