"""picasso-train mocks + fit + evaluate + export, then predict with the result."""

import json
import warnings

import numpy as np
import pytest
from click.testing import CliRunner

from picasso_astro import PicassoInputError, predict
from picasso_astro.exceptions import TargetWarning
from picasso_astro.training.cli import main


def _ok(args):
    result = CliRunner().invoke(main, [str(a) for a in args])
    assert result.exit_code == 0, result.output
    return result


def test_mocks_fit_evaluate_export_predict(tmp_path):
    data, run = tmp_path / "mocks", tmp_path / "run"
    _ok(
        [
            "mocks",
            "--n",
            8,
            "--seed",
            3,
            "--size",
            64,
            "--shard-size",
            4,
            "-o",
            data,
            "--quiet",
        ]
    )
    _ok(
        [
            "fit",
            "--data",
            data,
            "--out",
            run,
            "--device",
            "cpu",
            "--epochs",
            2,
            "--batch-size",
            4,
            "--width",
            4,
            "--depth",
            2,
            "--val-fraction",
            0.25,
            "--in-memory",
            "--time-limit",
            3600,
            "--quiet",
        ]
    )
    log = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    assert [entry["epoch"] for entry in log] == [1, 2]
    _ok(
        [
            "evaluate",
            "--model",
            run,
            "--data",
            data,
            "--out",
            run / "eval",
            "--device",
            "cpu",
            "--quiet",
        ]
    )
    metrics = json.loads((run / "eval" / "evaluation.json").read_text())
    assert "stellar_mass" in json.dumps(metrics)
    # On its own training data, only the run's validation galaxies are scored.
    assert metrics["n_galaxies"] == 2
    held_out = tmp_path / "held-out"
    _ok(["mocks", "--n", 3, "--seed", 4, "--size", 64, "-o", held_out, "--quiet"])
    _ok(
        [
            "evaluate",
            "--model",
            run,
            "--data",
            held_out,
            "--out",
            run / "eval2",
            "--baseline-data",
            data,
            "--device",
            "cpu",
            "--quiet",
        ]
    )
    metrics = json.loads((run / "eval2" / "evaluation.json").read_text())
    assert metrics["n_galaxies"] == 3
    _ok(
        [
            "export",
            "--run",
            run,
            "--out",
            tmp_path / "hub",
            "--metrics",
            run / "eval" / "evaluation.json",
        ]
    )
    card = (tmp_path / "hub" / "README.md").read_text()
    config = json.loads((tmp_path / "hub" / "config.json").read_text())
    assert config["cutout"] == {"kind": "fixed", "size": 64}
    assert config["input_range"]["r_max_nmgy"] > 0
    # The model records how its training mocks were prepared (the defaults).
    assert config["preprocessing"] == {
        "background": True,
        "match_psf": True,
        "mask_sources": True,
        "reference_band": "r",
    }
    assert "Buck" in card and "2111.01154" in card

    from picasso_astro.training.dataset import ShardedDataset

    item = ShardedDataset(data)[0]
    cube = item["images"]
    from astropy.nddata import NDData
    from astropy.wcs import WCS

    wcs = WCS(naxis=2)
    wcs.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    wcs.wcs.cdelt = [-0.396 / 3600, 0.396 / 3600]
    # A cube has no stars to measure the PSF on: predict says so ...
    with pytest.raises(PicassoInputError, match="psf_fwhm"):
        predict(NDData(cube, wcs=wcs, unit="nmgy"), model=tmp_path / "hub")
    # ... and uses the FWHM it is given. (A 64-pixel mock holds companions and
    # stars: what looks wrong with the target is not this test's concern.)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", TargetWarning)
        (maps,) = predict(
            NDData(cube, wcs=wcs, unit="nmgy"),
            model=tmp_path / "hub",
            preprocessing={"psf_fwhm": 1.4},
        )
    assert maps.names == tuple(
        json.loads((tmp_path / "hub" / "config.json").read_text())["properties"]
    )
    assert np.all(np.isfinite(maps["stellar_mass"].data))


def test_example_galaxy_feeds_picasso_predict(tmp_path, tiny_model_dir):
    from picasso_astro.cli import main as predict_main

    _ok(["example", "-o", tmp_path / "ex", "--size", 48])
    bands = sorted((tmp_path / "ex").glob("mock-?.fits"))
    assert [p.name for p in bands] == [f"mock-{b}.fits" for b in "giruz"]
    result = CliRunner().invoke(
        predict_main,
        [
            *map(str, bands),
            "-o",
            str(tmp_path / "maps"),
            "--model",
            str(tiny_model_dir),
        ],
    )
    assert result.exit_code == 0, result.output
    assert (tmp_path / "maps" / "mock.fits").exists()
    again = CliRunner().invoke(main, ["example", "-o", str(tmp_path / "ex")])
    assert again.exit_code == 1 and "exists" in again.output
    assert "--overwrite" in again.output
    _ok(["example", "-o", tmp_path / "ex", "--size", 48, "--overwrite"])


def test_the_readme_example_maps_its_own_truth(tmp_path):
    """The README's set-up example gives maps that mean something, silently."""
    from astropy.io import fits

    from picasso_astro import PropertyMaps
    from picasso_astro.cli import main as predict_main

    example, maps_dir = tmp_path / "example", tmp_path / "maps"
    _ok(["example", "-o", example, "--overwrite"])
    paths = sorted(str(p) for p in example.glob("mock-?.fits"))
    result = CliRunner().invoke(predict_main, [*paths, "-o", str(maps_dir)])
    assert result.exit_code == 0, result.output
    assert "warning" not in result.output
    maps = PropertyMaps.read(maps_dir / "mock.fits")
    truth = fits.getdata(example / "mock-truth.fits", "STELLAR_MASS")
    predicted = maps["stellar_mass"].data
    good = maps.footprint & np.isfinite(truth) & np.isfinite(predicted)
    assert good.sum() > 300
    # The map follows the galaxy's structure (truth spans about 2 dex here) ...
    residual = predicted[good] - truth[good]
    assert np.corrcoef(predicted[good], truth[good])[0, 1] > 0.95
    assert np.std(residual) < 0.15
    # ... up to an offset no larger than the scatter of the bundled model's
    # totals on held-out mocks (0.19 dex): one galaxy is one draw of it.
    assert abs(np.median(residual)) < 0.2
