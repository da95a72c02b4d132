"""Inputs that cannot be right are refused, and guesses are said out loud.

The corpus of bad inputs (issue 14): each kind below has a test that asserts
the exception or warning type and that the message names both the problem and
a remedy. Tests without a file name are in this file; ``T:`` is
``tests/training/``.

Pixels and units
 1. per-pixel magnitudes, no BUNIT ........... test_magnitudes_are_refused
 2. negative at the galaxy and everywhere .... test_negative_images_are_refused
 3. no BUNIT: unit inferred (warning) ........ test_an_inferred_unit_is_said
 4. bands whose noise says different units ... test_bands_of_one_galaxy_share_...
 5. pixel scale not the model's .............. test_a_pixel_scale_other_than_...
 6. image under 16 pixels a side ............. test_tiny_images_are_refused
 7. all-NaN band ............................. test_an_all_nan_band_and_an_empty_...
 8. 0 x 0 band ............................... test_an_all_nan_band_and_an_empty_...
 9. image too large for the memory ........... test_an_image_too_large_for_the_...,
                                               test_the_memory_guard_comes_before_...
10. frame cutout size too large for memory ... test_a_frame_cutout_too_large_...
Files
11. a directory given as a cutout ............ test_a_directory_given_as_a_cutout_...
12. no such file ............................. test_inputs.py::test_missing_file
13. a PNG given as a cutout .................. test_a_png_is_not_a_fits_file
14. a text file given as a cutout ............ test_inputs.py::test_not_a_fits_file
15. an empty (0-byte) file ................... test_lazy_cutouts.py::
                                               test_header_problems_fail_at_planning_...
16. truncated FITS data ...................... test_a_truncated_fits_file_says_so
17. FITS file cut inside its header .......... test_a_file_cut_inside_its_header_...
18. gzip-compressed file cut short ........... test_a_compressed_file_cut_short_...
19. no read permission ....................... test_a_cutout_without_read_permission_...
20. headers only, no image HDU ............... test_inputs.py::test_empty_and_all_nan_...
21. a 3-D file named as one band ............. test_a_3d_band_file_is_not_a_missing_band
22. a cube with other than five planes ....... test_a_cube_of_the_wrong_depth_...
23. a band missing ........................... test_inputs.py::test_missing_band
24. a band given twice ....................... test_inputs.py::test_duplicate_band
25. no band keyword nor band letter .......... test_inputs.py::test_band_not_found
26. a band keyword that is no band ('y') ..... test_a_band_keyword_that_is_not_a_band_...
27. an object of an unsupported type ......... test_inputs.py::test_unsupported_type
WCS
28. no celestial WCS ......................... test_inputs.py::test_no_wcs
29. rank-1 CD matrix ......................... test_a_singular_cd_matrix_is_named_...
30. all-zero CD matrix ....................... test_an_all_zero_cd_matrix_is_singular_too
31. unknown projection (CTYPE) ............... test_wcslib_errors_keep_their_meaning_...
32. inconsistent axis types .................. test_wcslib_errors_keep_their_meaning_...
33. bands of different sky ................... test_predict.py::
                                               test_bands_on_different_sky_are_refused
Targets and frames
34. rows off the sky (dec 95, NaN) ........... test_target_tables_off_the_sky_name_...,
                                               test_cli_catalogue_off_the_sky_is_one_line
35. an empty target table .................... test_target_tables_off_the_sky_name_...
36. ra/dec neither numbers nor sexagesimal .... test_target_tables_off_the_sky_name_...
37. no such catalogue file ................... test_run.py::test_targets_are_checked_...
38. a catalogue without ra/dec ............... test_run.py::test_targets_are_checked_...
39. a target outside every frame ............. test_predict_frames.py::
                                               test_target_outside_every_frame
40. a damaged r-band frame ................... test_a_corrupt_r_frame_is_named_not_...
41. a field whose frames cannot be read ...... test_predict_frames.py::
                                               test_corrupt_frame_spoils_only_its_field
42. corrupt frame file (4 kinds of damage) ... test_sdss.py::
                                               test_corrupt_frame_gives_clear_error
43. no such frame file ....................... test_sdss.py::
                                               test_uncompressed_and_missing_frames
44. a band frame of another field ............ test_run.py::test_a_band_frame_that_...
45. two galaxies of one name ................. test_catalogue.py::
                                               test_catalogue_duplicate_names_and_...
Options
46. a typo in a preparation option ........... test_run.py::test_a_typo_in_...
47. an unknown device ........................ test_predict.py::test_bad_options
Outputs
48. output directory is a file ............... test_catalogue.py::
                                               test_output_directory_problems_are_named
49. disk full writing the maps ............... test_a_full_disk_is_named_and_leaves_...
50. disk full writing the summary ............ test_catalogue.py::
                                               test_output_directory_problems_are_named
Models
51. only pickled weights ..................... test_pickled_weights_are_never_loaded_...
52. damaged or cut-short model.safetensors ... test_unreadable_weights_say_to_get_...
53. weights without read permission .......... test_weights_without_read_permission_...
54. weights without config.json .............. test_a_model_directory_without_config_...
55. a directory that is no model ............. test_a_model_directory_without_config_...
56. config.json without its weights .......... test_hub_local.py::
                                               test_damaged_files_are_reported
57. config.json not JSON ..................... test_hub_local.py::
                                               test_damaged_files_are_reported
58. config.json not a JSON object ............ test_a_config_json_that_is_not_an_object_...
59. config.json fields wrong (5 cases) ....... test_hub_local.py::
                                               test_bad_config_fields_are_named
60. config.json of another model ............. test_hub_local.py::
                                               test_config_weights_mismatch_is_refused
61. one byte of the weights changed .......... test_hub_local.py::
                                               test_a_flipped_byte_in_the_weights_...
62. config.json edited ....................... test_hub_local.py::
                                               test_an_edited_config_is_refused
63. bin edges edited in config.json .......... test_hub_local.py::
                                               test_bin_edges_have_one_source_of_truth
Training data and extras
64. a truncated HDF5 shard ................... T:test_dataset.py::
                                               test_a_truncated_shard_is_named_...
65. an interrupted mock dataset .............. T:test_dataset.py::
                                               test_an_interrupted_mock_dataset_...
66. plot() without matplotlib ................ test_maps_extras.py::
                                               test_plot_without_matplotlib_says_...
"""

import numpy as np
import pytest
from astropy.io import fits
from helpers import FAST_FRAMES, FAST_WARNING, make_band_hdus, save_tiny_model

from picasso_astro import PicassoInputError, predict
from picasso_astro.exceptions import InferredUnitWarning


def _files(tmp_path, hdus, name="gal"):
    tmp_path.mkdir(parents=True, exist_ok=True)
    paths = []
    for band, hdu in hdus.items():
        path = tmp_path / f"{name}-{band}.fits"
        hdu.writeto(path)
        paths.append(path)
    return paths


def _without_bunit(hdus):
    for hdu in hdus.values():
        del hdu.header["BUNIT"]
    return hdus


def test_magnitudes_are_refused(tmp_path, tiny_model_dir):
    hdus = _without_bunit(make_band_hdus(shape=(48, 48), noise=0.0))
    for hdu in hdus.values():
        flux = np.clip(hdu.data, 1e-3, None)
        hdu.data = (22.5 - 2.5 * np.log10(flux)).astype(np.float32)
    with pytest.raises(PicassoInputError, match=r"look like magnitudes.*10\*\*"):
        predict(_files(tmp_path, hdus), model=tiny_model_dir)


def test_negative_images_are_refused(tmp_path, tiny_model_dir):
    hdus = make_band_hdus(shape=(48, 48))
    for hdu in hdus.values():
        hdu.data = -np.abs(hdu.data) - 1.0
    with pytest.raises(
        PicassoInputError, match="negative at the galaxy.*sky-subtracted"
    ):
        predict(_files(tmp_path, hdus), model=tiny_model_dir)


def test_an_inferred_unit_is_said(tmp_path, tiny_model_dir):
    hdus = _without_bunit(make_band_hdus(shape=(48, 48)))
    with pytest.warns(InferredUnitWarning, match=r"no BUNIT in the ugriz.*set BUNIT"):
        (maps,) = predict(_files(tmp_path, hdus), model=tiny_model_dir)
    assert maps.meta["preprocessing"]["flux_unit"]["r"].startswith("assumed")


def test_bands_of_one_galaxy_share_their_inferred_unit(tmp_path, tiny_model_dir):
    """The noise test decides per band; a galaxy whose bands disagree is refused."""
    hdus = _without_bunit(make_band_hdus(shape=(48, 48), noise=0.05))
    for band, hdu in hdus.items():
        hdu.header["NMGY"] = 0.005
        hdu.header["GAIN"] = 4.0
        # Sky and gain imply 0.05 nmgy of noise for g, r, i (nanomaggies) but
        # 0.05 counts for u and z (counts): the bands disagree.
        hdu.header["SKY"] = 4.0 * 10.0**2 if band in "gri" else 4.0 * 0.05**2
    with pytest.raises(
        PicassoInputError, match="noise says nanomaggies for g, r, i.*set BUNIT"
    ):
        predict(_files(tmp_path, hdus), model=tiny_model_dir)


@pytest.mark.parametrize("scale", [0.2, 0.05, 3600.0])
def test_a_pixel_scale_other_than_the_models_is_refused(
    tmp_path, tiny_model_dir, scale
):
    hdus = make_band_hdus(shape=(48, 48))
    for hdu in hdus.values():
        hdu.header["CDELT1"] = -scale / 3600
        hdu.header["CDELT2"] = scale / 3600
    with pytest.raises(PicassoInputError, match=r"arcsec pixels.*resample"):
        predict(_files(tmp_path, hdus), model=tiny_model_dir)


def test_a_pixel_scale_within_three_per_cent_is_taken(tmp_path, tiny_model_dir):
    hdus = make_band_hdus(shape=(48, 48))
    for hdu in hdus.values():
        hdu.header["CDELT1"] = -0.40 / 3600
        hdu.header["CDELT2"] = 0.40 / 3600
    (maps,) = predict(_files(tmp_path, hdus), model=tiny_model_dir)
    assert maps.shape == (48, 48)


def test_a_band_nddata_keeps_its_unit(tiny_model_dir):
    from astropy.nddata import NDData
    from astropy.wcs import WCS

    inputs = {
        band: NDData(hdu.data, wcs=WCS(hdu.header), unit="nanomaggy")
        for band, hdu in make_band_hdus(shape=(48, 48)).items()
    }
    (maps,) = predict(inputs, model=tiny_model_dir)  # no InferredUnitWarning
    assert maps.meta["preprocessing"]["flux_unit"]["r"] == "BUNIT nanomaggies"


def test_target_tables_off_the_sky_name_their_rows():
    from astropy.table import Table

    from picasso_astro.inputs import parse_targets

    table = Table({"name": ["a", "b"], "ra": [200.5, 10.0], "dec": [36.7, 95.0]})
    with pytest.raises(PicassoInputError, match=r"row 1 \(b: .*dec must lie within"):
        parse_targets(table)
    with pytest.raises(PicassoInputError, match="no rows; give at least one"):
        parse_targets(Table({"ra": [], "dec": []}))
    with pytest.raises(PicassoInputError, match="neither numbers in degrees.*fix"):
        parse_targets(Table({"ra": ["x"], "dec": ["y"]}))


def test_sexagesimal_targets_are_read_as_astropy_reads_them():
    from astropy.table import Table

    from picasso_astro.inputs import parse_targets

    targets = parse_targets(Table({"ra": ["13:22:02.38"], "dec": ["+36:43:51.3"]}))
    assert targets.coords[0].ra.deg == pytest.approx(200.50992, abs=1e-5)
    assert targets.coords[0].dec.deg == pytest.approx(36.73092, abs=1e-5)
    plain = parse_targets(Table({"ra": ["200.5"], "dec": ["36.7"]}))
    assert plain.coords[0].ra.deg == pytest.approx(200.5)


def test_cli_catalogue_off_the_sky_is_one_line(tmp_path):
    from click.testing import CliRunner

    from picasso_astro.cli import main

    catalogue = tmp_path / "cat.csv"
    catalogue.write_text("ra,dec\n200.5,95\n")
    result = CliRunner().invoke(
        main,
        [
            "--frames",
            str(tmp_path),
            "--catalog",
            str(catalogue),
            "-o",
            str(tmp_path / "o"),
        ],
    )
    assert result.exit_code == 1
    assert "dec must lie within" in result.output and "Traceback" not in result.output


@pytest.mark.parametrize("shape", [(1, 1), (8, 40), (48, 12)])
def test_tiny_images_are_refused(tmp_path, tiny_model_dir, shape):
    hdus = make_band_hdus(shape=shape)
    with pytest.raises(
        PicassoInputError, match="too small to map a galaxy.*give cutouts that hold"
    ):
        predict(_files(tmp_path, hdus), model=tiny_model_dir)


def test_a_directory_given_as_a_cutout_says_how_to_give_frames(tmp_path):
    folder = tmp_path / "frames"
    folder.mkdir()
    with pytest.raises(PicassoInputError, match="is a directory.*targets="):
        predict([folder])


def test_a_band_keyword_that_is_not_a_band_is_named(tmp_path):
    from picasso_astro.inputs import parse_inputs

    hdu = make_band_hdus(shape=(48, 48))["r"]
    hdu.header["FILTER"] = "y"
    odd = tmp_path / "odd.fits"  # no band letter in the name either
    hdu.writeto(odd)
    (error,) = parse_inputs([odd])
    assert isinstance(error, PicassoInputError)
    assert "FILTER = 'y' is not one of u, g, r, i, z" in str(error)
    assert "rename the file" in str(error)


def test_pickled_weights_are_never_loaded_and_the_remedy_is_named(tmp_path):
    import shutil

    from picasso_astro import PicassoModelError, load_model
    from picasso_astro.hub import BUNDLED_MODEL_DIR

    folder = tmp_path / "model"
    folder.mkdir()
    shutil.copy(BUNDLED_MODEL_DIR / "config.json", folder / "config.json")
    (folder / "pytorch_model.bin").write_bytes(b"not even a pickle")
    with pytest.raises(PicassoModelError, match=r"never loads pickled.*save_file"):
        load_model(folder)


def _set_cd(header, cd):
    for key in ("CDELT1", "CDELT2", "PC1_1", "PC1_2", "PC2_1", "PC2_2"):
        header.remove(key, ignore_missing=True)
    for (i, j), value in zip([(1, 1), (1, 2), (2, 1), (2, 2)], cd, strict=True):
        header[f"CD{i}_{j}"] = value


@pytest.mark.parametrize("band", ["u", "r"])
def test_a_singular_cd_matrix_is_named_as_such(tmp_path, tiny_model_dir, band):
    """Rank 1: not "0 arcsec pixels", nor "not cutouts of the same galaxy"."""
    hdus = make_band_hdus(shape=(48, 48))
    _set_cd(hdus[band].header, [1e-4, 1e-4, 1e-4, 1e-4])
    with pytest.raises(PicassoInputError) as info:
        predict(_files(tmp_path, hdus), model=tiny_model_dir)
    message = str(info.value)
    assert f"gal-{band}.fits: the WCS is singular" in message
    assert "rank 1" in message and "fix the CDi_j" in message
    assert "same galaxy" not in message and "arcsec pixels" not in message


def test_an_all_zero_cd_matrix_is_singular_too(tmp_path, tiny_model_dir):
    hdus = make_band_hdus(shape=(48, 48))
    _set_cd(hdus["g"].header, [0.0, 0.0, 0.0, 0.0])
    with pytest.raises(PicassoInputError, match=r"WCS is singular.*fix the CDi_j"):
        predict(_files(tmp_path, hdus), model=tiny_model_dir)


@pytest.mark.parametrize(
    ("ctypes", "problem"),
    [
        (("RA---XYZ", "DEC--XYZ"), r"Unrecognized projection code \(XYZ"),
        (("RA---TAN", "RA---TAN"), "Inconsistent projection types"),
    ],
)
def test_wcslib_errors_keep_their_meaning_not_their_c_source(
    tmp_path, tiny_model_dir, ctypes, problem
):
    hdus = make_band_hdus(shape=(48, 48))
    hdus["i"].header["CTYPE1"], hdus["i"].header["CTYPE2"] = ctypes
    with pytest.raises(PicassoInputError, match=problem) as info:
        predict(_files(tmp_path, hdus), model=tiny_model_dir)
    message = str(info.value)
    assert "wcs.c" not in message and "ERROR 4" not in message
    assert "fix the WCS keywords" in message and "RA---TAN" in message


def test_a_3d_band_file_is_not_a_missing_band(tmp_path, tiny_model_dir):
    hdus = make_band_hdus(shape=(48, 48))
    plane = hdus["r"].data
    hdus["r"] = fits.PrimaryHDU(np.stack([plane, plane]), header=hdus["r"].header)
    with pytest.raises(PicassoInputError) as info:
        predict(_files(tmp_path, hdus), model=tiny_model_dir)
    message = str(info.value)
    assert "gal-r.fits: the data are 3-D (shape (2, 48, 48))" in message
    assert "expected a 2-D image" in message and "missing band" not in message


def test_a_cube_of_the_wrong_depth_says_what_a_cube_is(tmp_path):
    from picasso_astro.inputs import parse_inputs

    cube = tmp_path / "cube.fits"
    fits.PrimaryHDU(np.zeros((3, 20, 20), np.float32)).writeto(cube)
    (error,) = parse_inputs([cube])
    assert "a cube must have 5 planes (u, g, r, i, z), found 3" in str(error)
    assert "give a five-plane cube" in str(error)


def test_a_truncated_fits_file_says_so(tmp_path, tiny_model_dir):
    paths = _files(tmp_path, make_band_hdus(shape=(51, 51)))
    raw = paths[2].read_bytes()
    paths[2].write_bytes(raw[: 2880 + 720 * 4])
    with pytest.raises(PicassoInputError) as info:
        predict(paths, model=tiny_model_dir)
    message = str(info.value)
    assert "gal-r.fits: the file is truncated" in message
    assert "download or copy it again" in message
    assert "reshape" not in message


def test_a_file_cut_inside_its_header_is_damaged(tmp_path, tiny_model_dir):
    paths = _files(tmp_path, make_band_hdus(shape=(48, 48)))
    paths[0].write_bytes(paths[0].read_bytes()[:1000])
    with pytest.raises(PicassoInputError, match="truncated or damaged.*again"):
        predict(paths, model=tiny_model_dir)


def test_a_compressed_file_cut_short_is_damaged(tmp_path, tiny_model_dir):
    import gzip

    paths = _files(tmp_path, make_band_hdus(shape=(48, 48)))
    packed = paths[1].with_name("gal-g.fits.gz")
    packed.write_bytes(gzip.compress(paths[1].read_bytes())[:3000])
    paths[1].unlink()
    paths[1] = packed
    with pytest.raises(
        PicassoInputError, match="gal-g.fits.gz: the FITS file is.*copy it again"
    ):
        predict(paths, model=tiny_model_dir)


@pytest.mark.parametrize("name", ["gal-r.png", "gal-r.fits"])
def test_a_png_is_not_a_fits_file(tmp_path, tiny_model_dir, name):
    paths = _files(tmp_path, make_band_hdus(shape=(48, 48)))
    paths[2].unlink()
    paths[2] = tmp_path / name
    paths[2].write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(200))
    with pytest.raises(PicassoInputError) as info:
        predict(paths, model=tiny_model_dir)
    message = str(info.value)
    assert f"{name}: not a FITS file (a PNG image)" in message
    assert "needs FITS images in nanomaggies" in message
    assert "ignore_missing_simple" not in message and "missing band" not in message


def test_an_all_nan_band_and_an_empty_band_say_what_to_give(tmp_path, tiny_model_dir):
    hdus = make_band_hdus(shape=(48, 48))
    hdus["g"].data[:] = np.nan
    with pytest.raises(PicassoInputError, match="NaN or infinite.*give a cutout"):
        predict(_files(tmp_path / "nan", hdus), model=tiny_model_dir)
    hdus = make_band_hdus(shape=(48, 48))
    hdus["z"].data = np.zeros((0, 0), np.float32)
    with pytest.raises(
        PicassoInputError, match=r"z-band image is empty \(0 x 0 pixels\); give"
    ):
        predict(_files(tmp_path / "empty", hdus), model=tiny_model_dir)


@pytest.mark.filterwarnings(FAST_WARNING)
def test_a_corrupt_r_frame_is_named_not_called_outside(shared_data, tmp_path):
    from astropy.coordinates import SkyCoord

    field = shared_data / "sdss" / "field-004510-4-0030"
    frames = tmp_path / "frames"
    frames.mkdir()
    for path in field.glob("frame-*.fits.bz2"):
        if "frame-r-" in path.name:
            (frames / path.name).write_bytes(path.read_bytes()[:5000])
        else:
            (frames / path.name).symlink_to(path)
    model = save_tiny_model(tmp_path / "model", cutout_size=64, name="tiny-64")
    target = SkyCoord(200.48877278, 36.78051463, unit="deg")
    with pytest.raises(PicassoInputError) as info:
        predict(frames, targets=target, model=model, preprocessing=FAST_FRAMES)
    message = str(info.value)
    assert "could not read the SDSS frame" in message and "frame-r-" in message
    assert "download it again" in message and "outside" not in message


def test_a_full_disk_is_named_and_leaves_no_partial_file(
    tmp_path, tiny_model_dir, monkeypatch
):
    import errno

    from picasso_astro import predict_to_files

    def full(self, path, **kwargs):
        with open(path, "wb") as handle:  # a partial write, then the error
            handle.write(b"SIMPLE  =")
        raise OSError(errno.ENOSPC, "No space left on device")

    paths = _files(tmp_path / "in", make_band_hdus(shape=(48, 48)))
    monkeypatch.setattr(fits.HDUList, "writeto", full)
    out = tmp_path / "maps"
    summary = predict_to_files(paths, out, model=tiny_model_dir)
    (message,) = summary["message"]
    assert summary["status"][0] == "failed"
    assert "gal.fits: could not write the maps: the disk is full" in message
    assert "free some space" in message and "no partial file was left" in message
    assert sorted(p.name for p in out.iterdir()) == ["summary.ecsv"]


def _model_copy(tmp_path):
    import shutil

    from picasso_astro.hub import BUNDLED_MODEL_DIR

    copy = tmp_path / "model"
    shutil.copytree(BUNDLED_MODEL_DIR, copy)
    return copy


@pytest.mark.parametrize(
    ("damage", "problem"),
    [
        (lambda raw: b"garbage bytes" * 10, "not a readable safetensors file"),
        (lambda raw: raw[: len(raw) // 2], "not a readable safetensors file"),
        (lambda raw: b"", "not a readable safetensors file"),
    ],
    ids=["garbage", "truncated", "empty"],
)
def test_unreadable_weights_say_to_get_the_model_again(tmp_path, damage, problem):
    from picasso_astro import PicassoModelError, load_model

    weights = _model_copy(tmp_path) / "model.safetensors"
    weights.write_bytes(damage(weights.read_bytes()))
    with pytest.raises(PicassoModelError, match=problem) as info:
        load_model(weights.parent)
    assert "damaged or cut short" in str(info.value)
    assert "download or export the model again" in str(info.value)


def test_weights_without_read_permission_say_chmod(tmp_path, monkeypatch):
    from pathlib import Path

    from picasso_astro import PicassoModelError, load_model

    copy = _model_copy(tmp_path)
    real = Path.read_bytes

    def denied(self):
        if self.name == "model.safetensors":
            raise PermissionError(13, "Permission denied", str(self))
        return real(self)

    monkeypatch.setattr(Path, "read_bytes", denied)
    with pytest.raises(
        PicassoModelError, match=r"cannot be read \(Permission denied\).*chmod u\+r"
    ):
        load_model(copy)


def test_a_model_directory_without_config_json_says_what_a_model_is(tmp_path):
    from picasso_astro import PicassoModelError, load_model

    copy = _model_copy(tmp_path)
    (copy / "config.json").unlink()
    with pytest.raises(
        PicassoModelError, match=r"holds model.safetensors but no config.json.*put back"
    ):
        load_model(copy)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(
        PicassoModelError, match=r"not a picasso_astro model directory.*save_model"
    ):
        load_model(empty)


def test_a_config_json_that_is_not_an_object_is_refused(tmp_path):
    from picasso_astro import PicassoModelError, load_model

    copy = _model_copy(tmp_path)
    (copy / "config.json").write_text("[1, 2]")
    with pytest.raises(
        PicassoModelError, match=r"JSON object, not list; this is not a valid.*export"
    ):
        load_model(copy)


def test_an_image_too_large_for_the_memory_is_refused_with_the_sizes(monkeypatch):
    """An 8192 x 8192 cutout, checked without allocating its gigabytes."""
    from picasso_astro import _memory

    monkeypatch.setattr(_memory, "available_memory", lambda: 4 * 2**30)
    with pytest.raises(PicassoInputError) as info:
        _memory.check_image_memory((8192, 8192), "big")
    message = str(info.value)
    assert "big: 8192 x 8192 pixels would take about 12.5 GiB" in message
    assert "only 4.0 GiB is available" in message
    assert "smaller cutout" in message and "'cutout': 512" in message
    _memory.check_image_memory((512, 512), "small")  # 50 MiB fit


def test_the_memory_guard_comes_before_the_stacking(
    tmp_path, tiny_model_dir, monkeypatch
):
    from picasso_astro import _memory
    from picasso_astro.inputs import parse_inputs
    from picasso_astro.preprocess import stack_bands

    monkeypatch.setattr(_memory, "available_memory", lambda: 2**20)
    paths = _files(tmp_path, make_band_hdus(shape=(128, 128)))
    with pytest.raises(PicassoInputError, match=r"128 x 128 pixels.*3\.1 MiB"):
        predict(paths, model=tiny_model_dir)
    (galaxy,) = parse_inputs(paths)
    with pytest.raises(PicassoInputError, match="the five bands: 128 x 128"):
        stack_bands(galaxy.load().images)


@pytest.mark.filterwarnings(FAST_WARNING)
def test_a_frame_cutout_too_large_for_the_memory_is_refused(
    shared_data, tmp_path, monkeypatch
):
    from astropy.coordinates import SkyCoord

    from picasso_astro import _memory

    monkeypatch.setattr(_memory, "available_memory", lambda: 2**30)
    model = save_tiny_model(tmp_path / "model", cutout_size=64, name="tiny-64")
    with pytest.raises(PicassoInputError, match=r"8192 x 8192 pixels.*'cutout'"):
        predict(
            shared_data / "sdss" / "field-004510-4-0030",
            targets=SkyCoord(200.48877278, 36.78051463, unit="deg"),
            model=model,
            preprocessing=dict(FAST_FRAMES, cutout=8192),
        )


def test_a_cutout_without_read_permission_says_chmod(tmp_path, monkeypatch):
    from picasso_astro.inputs import parse_inputs

    paths = _files(tmp_path, make_band_hdus(shape=(48, 48)))
    real = fits.open

    def denied(name, *args, **kwargs):
        if str(name).endswith("gal-i.fits"):
            raise PermissionError(13, "Permission denied", str(name))
        return real(name, *args, **kwargs)

    monkeypatch.setattr(fits, "open", denied)
    (error,) = parse_inputs(paths)
    assert isinstance(error, PicassoInputError)
    assert "gal-i.fits: permission denied; make it readable (chmod u+r" in str(error)
