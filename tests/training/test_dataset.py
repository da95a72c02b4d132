import json

import numpy as np
import pytest
from click.testing import CliRunner

from picasso_astro.exceptions import PicassoInputError
from picasso_astro.preprocess import PreparationOptions, prepare_target
from picasso_astro.properties import PROPERTIES
from picasso_astro.training.cli import main
from picasso_astro.training.dataset import ShardedDataset
from picasso_astro.training.mocks import galaxy_seed, make_mock, write_mock_dataset

SIZE = 32


def run_cli(*args):
    result = CliRunner().invoke(main, ["mocks", *map(str, args)])
    return result


@pytest.fixture(scope="module")
def dataset_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("mocks")
    result = run_cli(
        "--n", 5, "--seed", 1, "-o", out, "--size", SIZE, "--shard-size", 2
    )
    assert result.exit_code == 0, result.output
    return out


def test_cli_writes_shards_and_manifest(dataset_dir):
    shards = sorted(p.name for p in dataset_dir.glob("shard-*.h5"))
    assert shards == ["shard-00000.h5", "shard-00001.h5", "shard-00002.h5"]
    manifest = json.loads((dataset_dir / "dataset.json").read_text())
    assert manifest["n"] == 5
    assert manifest["seed"] == 1
    assert manifest["bands"] == ["u", "g", "r", "i", "z"]
    assert manifest["property_names"] == list(PROPERTIES)
    assert manifest["pixel_scale"] == pytest.approx(0.396)
    assert not list(dataset_dir.glob(".*.tmp"))


def test_read_back_shapes_units_and_metadata(dataset_dir):
    data = ShardedDataset(dataset_dir)
    assert len(data) == 5
    item = data[3]
    n_props = len(PROPERTIES)
    assert item["images"].shape == (5, SIZE, SIZE)
    assert item["images"].dtype == np.float32
    assert item["noise"].shape == (5, SIZE, SIZE)
    assert item["mask"].shape == (SIZE, SIZE)
    assert item["mask"].dtype == bool
    assert item["truth"].shape == (n_props, SIZE, SIZE)
    assert item["truth_valid"].shape == (n_props, SIZE, SIZE)
    assert item["contaminant"].shape == (SIZE, SIZE)
    assert item["psf"].shape[:1] == (5,)
    assert int(item["index"]) == 3
    assert 8.5 <= item["params"]["log_mstar"] <= 11.5
    assert "stars" in item["extras"]
    units = data.attrs["property_units"]
    assert units[list(PROPERTIES).index("stellar_mass")] == str(
        PROPERTIES["stellar_mass"].unit
    )
    table = data.params_table()
    assert len(table) == 5
    assert "redshift" in table.colnames
    assert data[-1]["index"] == 4
    with pytest.raises(IndexError):
        data[5]
    data.close()


def test_in_memory_gives_the_same_galaxies(dataset_dir):
    with ShardedDataset(dataset_dir) as disk:
        memory = ShardedDataset(dataset_dir, in_memory=True)
        assert not memory._files  # nothing left open: all read
        assert len(memory) == len(disk)
        for index in range(len(disk)):
            a, b = disk[index], memory[index]
            assert a.keys() == b.keys()
            for key in a:
                if isinstance(a[key], np.ndarray):
                    np.testing.assert_array_equal(b[key], a[key])
                elif key == "params":  # NaN where a parameter does not apply
                    np.testing.assert_equal(b[key], a[key])
                else:
                    assert b[key] == a[key]
        assert len(memory.params_table()) == len(disk)


def test_stored_galaxy_equals_a_fresh_mock_prepared(dataset_dir):
    with ShardedDataset(dataset_dir) as data:
        item = data[2]
        recorded = data.attrs["preprocessing"]
    assert recorded == PreparationOptions().recorded()
    mock = make_mock(galaxy_seed(1, 2), size=SIZE)
    np.testing.assert_array_equal(item["truth"], mock.truth)
    cube, mask = prepare_target(mock.images, options=recorded).cube()
    np.testing.assert_array_equal(item["images"], cube)
    np.testing.assert_array_equal(item["mask"], mask)
    assert item["params"]["log_mstar"] == mock.params["log_mstar"]


def test_unprepared_mocks_are_stored_as_generated(tmp_path):
    out = tmp_path / "raw"
    switches = ("--no-background", "--no-match-psf", "--no-mask-sources")
    result = run_cli("--n", 3, "--seed", 1, "-o", out, "--size", SIZE, *switches)
    assert result.exit_code == 0, result.output
    with ShardedDataset(out) as data:
        item = data[2]
        assert not any(data.attrs["preprocessing"][k] for k in switches_keys())
    mock = make_mock(galaxy_seed(1, 2), size=SIZE)
    cube = item["images"]
    good = ~item["mask"]
    np.testing.assert_array_equal(cube[2][good], mock.images["r"].data[good])
    # A directory made with other preprocessing is not resumed into.
    result = run_cli("--n", 3, "--seed", 1, "-o", out, "--size", SIZE)
    assert result.exit_code != 0 and "preprocessing" in result.output


def switches_keys():
    return ("background", "match_psf", "mask_sources")


def test_resume_and_sharding_independence(tmp_path, dataset_dir):
    out = tmp_path / "resume"
    assert (
        write_mock_dataset(out, 5, seed=1, size=SIZE, shard_size=2, progress=False) == 5
    )
    (out / "shard-00000.h5").unlink()
    (out / ".shard-00000.h5.tmp").write_bytes(b"half-written")
    assert (
        write_mock_dataset(out, 5, seed=1, size=SIZE, shard_size=2, progress=False) == 2
    )
    assert (
        write_mock_dataset(out, 5, seed=1, size=SIZE, shard_size=2, progress=False) == 0
    )
    other = tmp_path / "other"
    write_mock_dataset(other, 5, seed=1, size=SIZE, shard_size=5, progress=False)
    with (
        ShardedDataset(out) as a,
        ShardedDataset(other) as b,
        ShardedDataset(dataset_dir) as c,
    ):
        for index in range(5):
            np.testing.assert_array_equal(a[index]["images"], b[index]["images"])
            np.testing.assert_array_equal(a[index]["images"], c[index]["images"])


def test_resume_refuses_other_settings(dataset_dir):
    result = run_cli(
        "--n", 5, "--seed", 2, "-o", dataset_dir, "--size", SIZE, "--shard-size", 2
    )
    assert result.exit_code != 0
    assert "seed" in result.output


def test_parallel_workers_give_the_same_data(tmp_path):
    one = tmp_path / "one"
    two = tmp_path / "two"
    write_mock_dataset(one, 4, seed=3, size=SIZE, shard_size=2, progress=False)
    write_mock_dataset(
        two, 4, seed=3, size=SIZE, shard_size=2, workers=2, progress=False
    )
    with ShardedDataset(one) as a, ShardedDataset(two) as b:
        for index in range(4):
            np.testing.assert_array_equal(a[index]["truth"], b[index]["truth"])


def test_bad_inputs(tmp_path):
    with pytest.raises(PicassoInputError, match="no dataset"):
        ShardedDataset(tmp_path)
    with pytest.raises(PicassoInputError, match="n must be"):
        write_mock_dataset(tmp_path / "x", 0, seed=1, progress=False)


def test_a_truncated_shard_is_named_with_the_command_that_rewrites_it(tmp_path):
    from picasso_astro.training.cli import main as train

    data = tmp_path / "mocks"
    mocks = ["mocks", "--n", 4, "--size", SIZE, "--shard-size", 2, "-o", data]
    assert run_cli(*mocks[1:]).exit_code == 0
    shard = data / "shard-00001.h5"
    shard.write_bytes(shard.read_bytes()[:5000])
    fit = ["fit", "--data", data, "--out", tmp_path / "run", "--epochs", 1, "--quiet"]
    result = CliRunner().invoke(train, list(map(str, fit)))
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert f"{shard}: the shard file is truncated or damaged" in result.output
    command = f"picasso-train mocks -o {data} --n 4 --seed 0 --size {SIZE}"
    assert command in result.output
    # The remedy works: the same command writes the shard again.
    assert run_cli(*mocks[1:]).exit_code == 0
    with ShardedDataset(data) as dataset:
        assert len(dataset) == 4


def test_an_interrupted_mock_dataset_is_not_trained_on(tmp_path):
    write_mock_dataset(tmp_path, 4, seed=2, size=SIZE, shard_size=2, progress=False)
    (tmp_path / "shard-00000.h5").unlink()
    with pytest.raises(
        PicassoInputError, match=r"1 of 2 shards are missing.*finish it: run.*--seed 2"
    ):
        ShardedDataset(tmp_path)


def test_fit_trains_on_mocks_of_two_sizes_given_twice(tmp_path):
    small, large = tmp_path / "small", tmp_path / "large"
    write_mock_dataset(small, 3, seed=3, size=SIZE, progress=False)
    write_mock_dataset(large, 3, seed=4, size=2 * SIZE, progress=False)
    fit = ["fit", "--data", small, "--data", large, "--epochs", 1, "--quiet"]
    fit += ["--width", 4, "--depth", 2, "--batch-size", 2, "--val-fraction", 0.3]
    refused = CliRunner().invoke(main, [*map(str, fit), "--out", str(tmp_path / "w")])
    assert refused.exit_code == 1 and "Traceback" not in refused.output
    assert f"--crop {SIZE} or less" in refused.output
    fit += ["--out", tmp_path / "run", "--crop", SIZE]
    done = CliRunner().invoke(main, list(map(str, fit)))
    assert done.exit_code == 0, done.output
    config = json.loads((tmp_path / "run" / "model" / "config.json").read_text())
    assert config["cutout"] == {"kind": "fixed", "size": SIZE}
    assert "small + large (6 galaxies)" in json.dumps(config["provenance"])
    split = json.loads((tmp_path / "run" / "split.json").read_text())
    assert split["data"] == [str(small.resolve()), str(large.resolve())]
