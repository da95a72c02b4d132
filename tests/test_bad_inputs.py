"""Inputs that cannot be right are refused, and guesses are said out loud."""

import numpy as np
import pytest
from helpers import make_band_hdus

from picasso_astro import PicassoInputError, predict
from picasso_astro.exceptions import InferredUnitWarning


def _files(tmp_path, hdus, name="gal"):
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
    with pytest.raises(PicassoInputError, match="noise says nanomaggies for g, r, i"):
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
    with pytest.raises(PicassoInputError, match="neither numbers in degrees nor"):
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
    with pytest.raises(PicassoInputError, match="too small to map a galaxy"):
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
