"""Cutout files are planned from headers and read when their galaxy's turn comes."""

import bz2
import gzip
import pickle
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits
from helpers import make_band_hdus, write_galaxy_files

from picasso_astro import PicassoInputError
from picasso_astro._plan import plan_units
from picasso_astro.catalogue import predict_to_files
from picasso_astro.inputs import GalaxyFiles, GalaxyInput, parse_inputs


@pytest.fixture
def opened(monkeypatch):
    """Count `astropy.io.fits.open` calls per file name."""
    counts = Counter()
    real_open = fits.open

    def spy(name, *args, **kwargs):
        counts[Path(name).name] += 1
        return real_open(name, *args, **kwargs)

    monkeypatch.setattr(fits, "open", spy)
    return counts


def _truncate_data(path):
    """Cut a file inside its data section, leaving the header whole."""
    header_bytes = len(fits.getheader(path).tostring())
    raw = Path(path).read_bytes()
    Path(path).write_bytes(raw[: header_bytes + 100])


def test_planning_opens_each_file_once_and_reads_no_pixels(tmp_path, opened):
    paths = write_galaxy_files(tmp_path, 3)
    galaxies = parse_inputs(paths)
    assert [g.name for g in galaxies] == ["gal0", "gal1", "gal2"]
    assert all(isinstance(g, GalaxyFiles) for g in galaxies)
    assert opened == Counter({p.name: 1 for p in paths})
    assert galaxies[1].sources == [str(p) for p in paths[5:10]]
    assert galaxies[1].bands == list("ugriz")
    # The plan holds names and file names, not pixels (5 x 7.5 KiB each).
    plan = plan_units(paths)
    assert len(pickle.dumps(plan)) < 4096
    assert opened == Counter({p.name: 2 for p in paths})


def test_pixels_are_read_when_loaded(tmp_path, opened):
    paths = write_galaxy_files(tmp_path, 3)
    galaxies = parse_inputs(paths)
    opened.clear()
    # Pixels changed after planning are the ones a galaxy gets.
    new = make_band_hdus(seed=99)["g"]
    fits.PrimaryHDU(new.data, header=fits.getheader(paths[6])).writeto(
        paths[6], overwrite=True
    )
    opened.clear()
    galaxy = galaxies[1].load()
    assert opened == Counter({p.name: 1 for p in paths[5:10]})
    assert isinstance(galaxy, GalaxyInput)
    assert galaxy.name == "gal1"
    assert galaxy.sources == galaxies[1].sources
    assert sorted(galaxy.images) == sorted("ugriz")
    np.testing.assert_array_equal(galaxy.images["g"].data, new.data)
    assert galaxy.load() is galaxy


def test_corrupt_pixels_fail_at_load_time_only(tmp_path):
    paths = write_galaxy_files(tmp_path, 3)
    _truncate_data(paths[7])  # gal1-r.fits
    galaxies = parse_inputs(paths)
    assert all(isinstance(g, GalaxyFiles) for g in galaxies)
    with pytest.raises(PicassoInputError, match="the file is truncated") as info:
        galaxies[1].load()
    assert "gal1-r.fits" in str(info.value)
    for galaxy in (galaxies[0], galaxies[2]):
        assert sorted(galaxy.load().images) == sorted("ugriz")


def test_a_corrupt_galaxy_fails_alone_in_a_catalogue_run(tmp_path, tiny_model_dir):
    paths = write_galaxy_files(tmp_path, 3)
    _truncate_data(paths[7])
    summary = predict_to_files(
        paths, tmp_path / "maps", model=tiny_model_dir, device="cpu"
    )
    status = dict(zip(summary["name"], summary["status"], strict=True))
    assert status == {"gal0": "done", "gal1": "failed", "gal2": "done"}
    (message,) = summary["message"][summary["status"] == "failed"]
    assert "gal1-r.fits: the file is truncated" in message


def _drop_filter(hdus, band):
    del hdus[band].header["FILTER"]
    return hdus


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda folder, paths: paths[4].unlink(), "missing band(s) z"),
        (
            lambda folder, paths: _rewrite(paths[4], header={"FILTER": "i"}),
            "band(s) i given more than once",
        ),
        (lambda folder, paths: paths[2].write_text("not FITS"), "not a FITS file"),
        (
            lambda folder, paths: paths[2].write_bytes(b""),
            "the file is empty (0 bytes; an interrupted download or copy?); "
            "download or copy it again",
        ),
        (
            lambda folder, paths: _rewrite(paths[2], data=False),
            "no image data in any HDU",
        ),
    ],
)
def test_header_problems_fail_at_planning_per_galaxy(tmp_path, damage, message):
    paths = write_galaxy_files(tmp_path, 3)
    damage(tmp_path, paths[5:10])
    results = parse_inputs([p for p in paths if p.exists()])
    assert [type(r) for r in results] == [GalaxyFiles, PicassoInputError, GalaxyFiles]
    assert message in str(results[1])


def _rewrite(path, *, header=None, data=True):
    new_header = fits.getheader(path)
    new_header.update(header or {})
    hdu = fits.PrimaryHDU(fits.getdata(path) if data else None, header=new_header)
    hdu.writeto(path, overwrite=True)


def test_band_not_found_and_missing_file_fail_at_planning(tmp_path):
    good = write_galaxy_files(tmp_path, 1)
    hdu = make_band_hdus()["r"]
    del hdu.header["FILTER"]
    nameless = tmp_path / "galaxy.fits"
    hdu.writeto(nameless)
    results = parse_inputs([nameless, *good, tmp_path / "nope-r.fits"])
    assert [type(r) for r in results] == [
        PicassoInputError,
        GalaxyFiles,
        PicassoInputError,
    ]
    assert "cannot tell its band" in str(results[0])
    assert "no such file" in str(results[2])


@pytest.mark.parametrize(("suffix", "compress"), [(".gz", gzip), (".bz2", bz2)])
def test_compressed_files(tmp_path, suffix, compress, opened):
    plain = write_galaxy_files(tmp_path, 1)
    packed = []
    for path in plain:
        target = path.with_name(path.name + suffix)
        target.write_bytes(compress.compress(path.read_bytes()))
        packed.append(target)
    (galaxy,) = parse_inputs(packed)
    assert galaxy.name == "gal0"
    assert opened == Counter({p.name: 1 for p in packed})
    loaded, expected = galaxy.load(), parse_inputs(plain)[0].load()
    for band in "ugriz":
        np.testing.assert_array_equal(
            loaded.images[band].data, expected.images[band].data
        )


def test_cubes_are_planned_from_headers(tmp_path, opened):
    hdus = make_band_hdus()
    header = hdus["r"].header.copy()
    del header["FILTER"]
    cube = np.stack([hdus[b].data for b in "ugriz"])
    good, short = tmp_path / "cube.fits", tmp_path / "short.fits"
    fits.PrimaryHDU(cube, header=header).writeto(good)
    fits.PrimaryHDU(cube[:4], header=header).writeto(short)
    galaxies = parse_inputs([good, short])
    assert opened == Counter({"cube.fits": 1, "short.fits": 1})
    assert isinstance(galaxies[0], GalaxyFiles)
    assert galaxies[0].bands is None
    assert "a cube must have 5 planes (u, g, r, i, z), found 4" in str(galaxies[1])
    np.testing.assert_array_equal(galaxies[0].load().images["i"].data, hdus["i"].data)


def test_a_dict_of_files_is_planned_lazily(tmp_path, opened):
    paths = write_galaxy_files(tmp_path, 1)
    galaxy, missing = parse_inputs(
        [
            dict(zip("ugriz", paths, strict=True)),
            dict(zip("ugri", paths[:4], strict=True)),
        ]
    )
    assert isinstance(galaxy, GalaxyFiles)
    assert "missing band(s) z" in str(missing)
    assert all(opened[p.name] == 2 for p in paths[:4])
    opened.clear()
    assert sorted(galaxy.load().images) == sorted("ugriz")
    assert opened == Counter({p.name: 1 for p in paths})


def test_in_memory_inputs_are_read_and_load_themselves():
    (galaxy,) = parse_inputs(make_band_hdus())
    assert isinstance(galaxy, GalaxyInput)
    assert galaxy.load() is galaxy
