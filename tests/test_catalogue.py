"""Catalogue runs: streaming, map files as they finish, resume, summary table."""

import threading

import numpy as np
import pytest
from astropy.coordinates import SkyCoord
from astropy.table import Table
from click.testing import CliRunner
from helpers import (
    FAST_FRAMES,
    FAST_WARNING,
    TARGET_WARNINGS,
    make_band_hdus,
    write_galaxy_files,
)

from picasso_astro import PropertyMaps, predict
from picasso_astro import _stream as stream_module
from picasso_astro._outputs import SUMMARY_NAME, map_file_complete, map_path
from picasso_astro.catalogue import predict_to_files
from picasso_astro.cli import main

pytestmark = [
    pytest.mark.filterwarnings(FAST_WARNING),
    pytest.mark.filterwarnings(TARGET_WARNINGS),
]


@pytest.fixture
def galaxy_files(tmp_path):
    """Five synthetic galaxies, five single-band files each."""
    folder = tmp_path / "cutouts"
    folder.mkdir()
    return write_galaxy_files(folder, 5)


def _statuses(summary):
    return dict(zip(summary["name"], summary["status"], strict=True))


def test_files_and_summary(galaxy_files, tiny_model_dir, tmp_path):
    out = tmp_path / "maps"
    summary = predict_to_files(
        galaxy_files, out, model=tiny_model_dir, device="cpu", batch_size=2
    )
    assert _statuses(summary) == {f"gal{n}": "done" for n in range(5)}
    assert list(summary["index"]) == list(range(5))
    on_disk = Table.read(out / SUMMARY_NAME, format="ascii.ecsv")
    assert list(on_disk["status"]) == ["done"] * 5
    expected = predict(galaxy_files, model=tiny_model_dir, device="cpu")
    for maps in expected:
        written = PropertyMaps.read(map_path(out, maps.meta["galaxy"]))
        np.testing.assert_allclose(
            written["stellar_mass"].data, maps["stellar_mass"].data, atol=1e-5
        )


def test_resume_skips_complete_and_redoes_missing_or_damaged(
    galaxy_files, tiny_model_dir, tmp_path
):
    out = tmp_path / "maps"
    predict_to_files(galaxy_files, out, model=tiny_model_dir, device="cpu")
    kept = map_path(out, "gal0")
    kept_mtime = kept.stat().st_mtime_ns
    map_path(out, "gal1").unlink()
    truncated = map_path(out, "gal2")
    truncated.write_bytes(truncated.read_bytes()[:20000])
    flipped = map_path(out, "gal3")
    data = bytearray(flipped.read_bytes())
    data[-100] ^= 0xFF
    flipped.write_bytes(bytes(data))
    assert not map_file_complete(truncated)
    assert not map_file_complete(flipped)
    assert map_file_complete(kept)

    summary = predict_to_files(
        galaxy_files, out, model=tiny_model_dir, device="cpu", resume=True
    )
    assert _statuses(summary) == {
        "gal0": "skipped",
        "gal1": "done",
        "gal2": "done",
        "gal3": "done",
        "gal4": "skipped",
    }
    assert kept.stat().st_mtime_ns == kept_mtime
    for number in range(5):
        assert map_file_complete(map_path(out, f"gal{number}"))


def test_existing_files_are_not_overwritten_without_asking(
    galaxy_files, tiny_model_dir, tmp_path
):
    out = tmp_path / "maps"
    predict_to_files(galaxy_files[:5], out, model=tiny_model_dir, device="cpu")
    before = map_path(out, "gal0").read_bytes()
    summary = predict_to_files(galaxy_files, out, model=tiny_model_dir, device="cpu")
    statuses = _statuses(summary)
    # Kept, and a rerun never turns the galaxy done before into a failure.
    assert statuses["gal0"] == "skipped" and statuses["gal1"] == "done"
    assert "--overwrite" in summary["message"][0]
    assert map_path(out, "gal0").read_bytes() == before
    # A damaged file is not replaced without asking: that galaxy fails.
    map_path(out, "gal0").write_bytes(before[:1000])
    summary = predict_to_files(galaxy_files, out, model=tiny_model_dir, device="cpu")
    assert _statuses(summary)["gal0"] == "failed"
    assert "--resume" in summary["message"][0]
    with pytest.raises(ValueError, match="exclude"):
        predict_to_files(galaxy_files, out, resume=True, overwrite=True)


def test_interrupted_run_leaves_summary_and_resumes(
    galaxy_files, tiny_model_dir, tmp_path
):
    out = tmp_path / "maps"
    seen = []

    def stop_after_two(row):
        seen.append(row["name"])
        if len(seen) == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        predict_to_files(
            galaxy_files,
            out,
            model=tiny_model_dir,
            device="cpu",
            batch_size=1,
            on_outcome=stop_after_two,
        )
    partial = Table.read(out / SUMMARY_NAME, format="ascii.ecsv")
    assert list(partial["status"]) == ["done", "done"]
    assert sorted(p.name for p in out.glob("*.fits")) == ["gal0.fits", "gal1.fits"]
    summary = predict_to_files(
        galaxy_files, out, model=tiny_model_dir, device="cpu", resume=True
    )
    statuses = _statuses(summary)
    assert [statuses[f"gal{n}"] for n in range(5)] == ["skipped"] * 2 + ["done"] * 3


def test_preparation_overlaps_the_network(galaxy_files, tiny_model_dir, monkeypatch):
    """The second galaxy is prepared while the network still runs the first."""
    second_prepared = threading.Event()
    real_prepare = stream_module._cutout_payload
    real_network = stream_module.run_network
    overlapped = []

    def prepare(galaxy, config, options):
        result = real_prepare(galaxy, config, options)
        if galaxy.name == "gal1":
            second_prepared.set()
        return result

    def network(*args, **kwargs):
        if not overlapped:
            # Without a pipeline this would wait in vain.
            overlapped.append(second_prepared.wait(timeout=20))
        return real_network(*args, **kwargs)

    monkeypatch.setattr(stream_module, "_cutout_payload", prepare)
    monkeypatch.setattr(stream_module, "run_network", network)
    results = predict(galaxy_files, model=tiny_model_dir, device="cpu", batch_size=1)
    assert overlapped == [True]
    assert all(isinstance(maps, PropertyMaps) for maps in results)


def test_map_path_makes_safe_file_names(tmp_path):
    assert map_path(tmp_path, "NGC 4321") == tmp_path / "NGC_4321.fits"
    assert map_path(tmp_path, "a/b") == tmp_path / "a_b.fits"
    assert map_path(tmp_path, "J200.50993+36.73092").name == "J200.50993+36.73092.fits"


def test_map_file_complete_rejects_other_files(tmp_path):
    other = tmp_path / "other.fits"
    make_band_hdus()["r"].writeto(other)
    assert not map_file_complete(other)
    assert not map_file_complete(tmp_path / "missing.fits")
    (tmp_path / "text.fits").write_text("not fits")
    assert not map_file_complete(tmp_path / "text.fits")


def test_cli_resume_and_summary(galaxy_files, tiny_model_dir, tmp_path):
    out = tmp_path / "maps"
    args = [*map(str, galaxy_files), "-o", str(out), "--model", str(tiny_model_dir)]
    runner = CliRunner()
    first = runner.invoke(main, [*args, "--no-progress"])
    assert first.exit_code == 0, first.output
    assert "5 galaxies written, 0 failed, 0 skipped" in first.output
    map_path(out, "gal4").unlink()
    again = runner.invoke(main, [*args, "--no-progress", "--resume"])
    assert again.exit_code == 0, again.output
    assert "1 galaxy written, 0 failed, 4 skipped" in again.output
    both = runner.invoke(main, [*args, "--resume", "--overwrite"])
    assert both.exit_code == 2 and "exclude" in both.output


# --- whole frames ---------------------------------------------------------


def test_frames_read_once_per_field_and_freed(shared_data, model_64, monkeypatch):
    from picasso_astro import sdss

    fields = sdss.find_frames(
        [
            shared_data / "sdss" / "field-004510-4-0030",
            shared_data / "sdss" / "field-002583-2-0136",
        ]
    )
    # Two positions in each field, interleaved in the catalogue.
    positions = []
    for fld in fields.values():
        wcs, _ = fld.geometry()
        positions.append(
            [wcs.pixel_to_world(x, y) for x, y in ((400, 500), (900, 700))]
        )
    coords = SkyCoord(
        [positions[0][0], positions[1][0], positions[0][1], positions[1][1]]
    )
    reads = []
    real_read = sdss.read_frame

    def counting_read(path, **kwargs):
        reads.append(str(path))
        return real_read(path, **kwargs)

    monkeypatch.setattr(sdss, "read_frame", counting_read)
    results = predict(
        fields,
        targets=coords,
        model=model_64,
        device="cpu",
        preprocessing=FAST_FRAMES,
    )
    assert all(isinstance(maps, PropertyMaps) for maps in results)
    assert len(reads) == 10 and len(set(reads)) == 10
    assert all(not fld._images for fld in fields.values())
    # Results come back in catalogue order, each from its own field.
    for maps, coord in zip(results, coords, strict=True):
        x, y = maps.wcs.world_to_pixel(coord)
        assert abs(x - 31.5) < 1 and abs(y - 31.5) < 1


def test_catalogue_duplicate_names_and_outside_targets(shared_data, model_64, tmp_path):
    field = shared_data / "sdss" / "field-004510-4-0030"
    catalog = Table(
        {
            "name": ["g1", "g1", "far"],
            "ra": [200.50993224, 200.48877278, 10.0],
            "dec": [36.73092147, 36.78051463, -5.0],
        }
    )
    summary = predict_to_files(
        field,
        tmp_path / "maps",
        targets=catalog,
        model=model_64,
        device="cpu",
        preprocessing=FAST_FRAMES,
    )
    assert list(summary["status"]) == ["done", "failed", "failed"]
    assert "give the galaxies distinct names" in summary["message"][1]
    assert "outside every frame" in summary["message"][2]
    assert summary["field"][0] == "004510-4-0030"


def test_split_units_keeps_every_target_once():
    from picasso_astro._plan import CutoutUnit, FieldUnit, split_units

    units = [FieldUnit("a", list(range(70))), FieldUnit("b", [1, 2]), CutoutUnit([3])]
    split = split_units(units, 32)
    sizes = [len(unit) for unit in split]
    assert sizes == [24, 24, 22, 2, 1]
    assert [t for unit in split[:3] for t in unit.targets] == list(range(70))


def test_silenced_warnings_stay_silenced_across_threads():
    """Threads preparing galaxies silence library warnings without racing."""
    import warnings

    from picasso_astro._warnings import ignoring

    class NoisyWarning(UserWarning):
        pass

    escaped = []

    def work():
        for _ in range(300):
            with ignoring(NoisyWarning):
                try:
                    warnings.warn("noise", NoisyWarning, stacklevel=1)
                except NoisyWarning:  # the test runs with warnings as errors
                    escaped.append(1)

    threads = [threading.Thread(target=work) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not escaped


def test_cli_batch_size_auto_or_positive(galaxy_files, tiny_model_dir, tmp_path):
    args = [*map(str, galaxy_files[:5]), "-o", str(tmp_path / "maps")]
    args += ["--model", str(tiny_model_dir), "--no-progress"]
    bad = CliRunner().invoke(main, [*args, "--batch-size", "0"])
    assert bad.exit_code == 2 and "positive integer or auto" in bad.output
    good = CliRunner().invoke(main, [*args, "--batch-size", "auto"])
    assert good.exit_code == 0, good.output


def test_output_directory_problems_are_named(galaxy_files, tiny_model_dir, tmp_path):
    from picasso_astro import PicassoInputError
    from picasso_astro import catalogue as catalogue_module

    a_file = tmp_path / "not-a-dir"
    a_file.write_text("x")
    with pytest.raises(PicassoInputError, match="is a file; give a directory"):
        predict_to_files(galaxy_files[:5], a_file, model=tiny_model_dir)

    def full_disk(table, path):
        raise OSError(28, "No space left on device")

    real = catalogue_module.write_summary
    catalogue_module.write_summary = full_disk
    try:
        with pytest.raises(
            PicassoInputError, match="could not write the summary: the disk is full"
        ):
            predict_to_files(galaxy_files[:5], tmp_path / "a", model=tiny_model_dir)

        # An interruption on its way is not replaced by the summary's error.
        def interrupt(row):
            raise KeyboardInterrupt

        with pytest.raises(KeyboardInterrupt):
            predict_to_files(
                galaxy_files[:5], tmp_path / "b", model=tiny_model_dir,
                on_outcome=interrupt,
            )  # fmt: skip
    finally:
        catalogue_module.write_summary = real


def test_progress_is_shown_when_a_person_is_watching(monkeypatch):
    import sys
    import types

    from picasso_astro._outputs import interactive, progress_bar

    monkeypatch.delitem(sys.modules, "ipykernel", raising=False)
    assert interactive() == sys.stderr.isatty()
    items = [1, 2]
    if not sys.stderr.isatty():
        assert progress_bar(items, None, 2) is items
    monkeypatch.setitem(sys.modules, "ipykernel", types.ModuleType("ipykernel"))
    assert interactive()
    bar = progress_bar(items, None, 2)
    assert bar is not items and list(bar) == items
    bar.close()
