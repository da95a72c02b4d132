"""predict and predict_to_files on a Dask LocalCluster of two worker processes."""

import logging
import os
import signal
import threading
import time

import numpy as np
import pytest
from astropy.coordinates import SkyCoord
from click.testing import CliRunner
from field_helpers import write_field
from helpers import FAST_FRAMES, FAST_WARNING, TARGET_WARNINGS, write_galaxy_files

from picasso_astro import PicassoWarning, PropertyMaps, _dask, predict
from picasso_astro._outputs import map_file_complete, map_path
from picasso_astro.catalogue import predict_to_files
from picasso_astro.cli import main
from picasso_astro.sdss import find_frames

pytestmark = [
    pytest.mark.filterwarnings(FAST_WARNING),
    pytest.mark.filterwarnings(TARGET_WARNINGS),
]

distributed = pytest.importorskip("distributed")


@pytest.fixture(scope="module")
def client():
    cluster = distributed.LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=True,
        dashboard_address=":0",
        silence_logs=logging.ERROR,
    )
    with distributed.Client(cluster) as dask_client:
        yield dask_client
    cluster.close()


@pytest.fixture
def galaxy_files(tmp_path):
    return write_galaxy_files(tmp_path, 6)


def test_results_match_local_and_model_loaded_once_per_worker(
    client, galaxy_files, tiny_model_dir
):
    local = predict(galaxy_files, model=tiny_model_dir, device="cpu")
    remote = predict(
        galaxy_files, model=tiny_model_dir, device="cpu", batch_size=1, client=client
    )
    assert len(remote) == 6
    for ours, theirs in zip(local, remote, strict=True):
        assert isinstance(theirs, PropertyMaps)
        assert theirs.meta["galaxy"] == ours.meta["galaxy"]
        np.testing.assert_allclose(theirs["sfr"].data, ours["sfr"].data, atol=1e-5)
        assert theirs.wcs.wcs.compare(ours.wcs.wcs)
    # Again: every worker keeps the model it built (one per weights and device).
    before = client.run(_worker_models)
    predict(galaxy_files, model=tiny_model_dir, device="cpu", client=client)
    after = client.run(_worker_models)
    assert sum(len(models) for models in after.values()) >= 1
    for worker, models in before.items():
        assert len(models) <= 1
        assert {k: v for k, v in after[worker].items() if k in models} == models


def _worker_models():
    """The models a worker process has built: key -> id of the model object."""
    return {key: id(entry[0]) for key, entry in _dask._WORKER_MODELS.items()}


def test_a_fields_bands_are_prepared_once_for_all_its_tasks(
    client, tiny_model_dir, tmp_path
):
    folder = write_field(tmp_path, shape=(320, 480))
    (fld,) = find_frames(folder).values()
    wcs, (ny, nx) = fld.geometry()
    # Enough galaxies to take the field's background whole, in two tasks.
    many = 40
    coords = wcs.pixel_to_world(np.linspace(30, nx - 30, many), np.full(many, ny / 2))
    options = {"psf_fwhm": 1.4, "background": True}
    local = predict(
        folder,
        targets=coords,
        model=tiny_model_dir,
        device="cpu",
        preprocessing=options,
    )
    with distributed.get_task_stream(client) as stream:
        remote = predict(
            folder,
            targets=coords,
            model=tiny_model_dir,
            device="cpu",
            preprocessing=options,
            client=client,
        )
    tasks = [task["key"].split("-")[0] for task in stream.data]
    # Five bands prepared once, for the field's two tasks (one per worker).
    assert tasks.count("run_band") == 5
    assert tasks.count("run_unit") == 2
    units = [task for task in stream.data if task["key"].startswith("run_unit")]
    assert len({task["worker"] for task in units}) == 2
    for ours, theirs in zip(local, remote, strict=True):
        assert theirs.meta["preprocessing"] == ours.meta["preprocessing"]
        np.testing.assert_array_equal(theirs["sfr"].mask, ours["sfr"].mask)
        np.testing.assert_allclose(theirs["sfr"].data, ours["sfr"].data, atol=1e-5)


def test_errors_come_back_per_galaxy(client, galaxy_files, tiny_model_dir, tmp_path):
    broken = tmp_path / "bad-r.fits"
    broken.write_text("not a FITS file")
    with pytest.warns(PicassoWarning, match="bad|missing|FITS"):
        results = predict(
            [*galaxy_files[:5], broken],
            model=tiny_model_dir,
            device="cpu",
            on_error="skip",
            client=client,
        )
    assert isinstance(results[0], PropertyMaps)
    assert results[1] is None


def test_cli_scheduler(client, galaxy_files, tiny_model_dir, tmp_path):
    out = tmp_path / "maps"
    result = CliRunner().invoke(
        main,
        [
            *map(str, galaxy_files),
            "-o",
            str(out),
            "--model",
            str(tiny_model_dir),
            "--scheduler",
            client.scheduler.address,
            "--no-progress",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "6 galaxies written" in result.output
    assert all(map_file_complete(map_path(out, f"gal{n}")) for n in range(6))


def test_cli_scheduler_unreachable(galaxy_files, tiny_model_dir, tmp_path):
    result = CliRunner().invoke(
        main,
        [
            *map(str, galaxy_files[:5]),
            "-o",
            str(tmp_path),
            "--model",
            str(tiny_model_dir),
            "--scheduler",
            "tcp://127.0.0.1:9",
        ],
    )
    assert result.exit_code == 1
    assert "could not connect to the Dask scheduler" in result.output
    assert "Traceback" not in result.output


def _kill_a_busy_worker(client, deadline):
    """SIGKILL the process of a worker while it runs one of our tasks."""
    while time.monotonic() < deadline:
        busy = [
            address
            for address, keys in client.processing().items()
            if any("run_unit" in str(key) for key in keys)
        ]
        if busy:
            pid = client.run(os.getpid, workers=[busy[0]])[busy[0]]
            os.kill(pid, signal.SIGKILL)
            return pid
        time.sleep(0.02)
    return None


def test_killed_worker_does_not_lose_the_run(client, shared_data, model_64, tmp_path):
    from picasso_astro import sdss

    folders = [
        shared_data / "sdss" / name
        for name in (
            "field-004510-4-0030",
            "field-002583-2-0136",
            "field-005405-6-0099",
        )
    ]
    fields = sdss.find_frames(folders)
    coords = []
    for fld in fields.values():
        wcs, _ = fld.geometry()
        coords += [wcs.pixel_to_world(x, y) for x, y in ((500, 400), (1200, 900))]
    coords = SkyCoord(coords)
    out = tmp_path / "maps"
    box = {}

    def run():
        try:
            box["summary"] = predict_to_files(
                folders,
                out,
                targets=coords,
                model=model_64,
                device="cpu",
                preprocessing=FAST_FRAMES,
                client=client,
            )
        except BaseException as exc:  # handed to the test thread
            box["error"] = exc

    thread = threading.Thread(target=run)
    thread.start()
    killed = _kill_a_busy_worker(client, time.monotonic() + 120)
    thread.join(timeout=600)
    assert killed is not None, "no task was seen running on a worker"
    assert "error" not in box, box.get("error")
    summary = box["summary"]
    assert list(summary["status"]) == ["done"] * 6, list(summary["message"])
    for row in summary:
        assert map_file_complete(row["file"])
    client.wait_for_workers(2, timeout=120)
    assert killed not in client.run(os.getpid).values()


def test_cli_local_workers(galaxy_files, tiny_model_dir, tmp_path):
    out = tmp_path / "maps"
    args = [*map(str, galaxy_files), "-o", str(out), "--model", str(tiny_model_dir)]
    result = CliRunner().invoke(main, [*args, "--workers", "2", "--no-progress"])
    assert result.exit_code == 0, result.output
    assert "6 galaxies written" in result.output
    both = CliRunner().invoke(main, [*args, "--workers", "2", "--scheduler", "x"])
    assert both.exit_code == 2 and "exclude" in both.output
