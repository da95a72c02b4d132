import sys
import warnings

import astropy.units as u
import numpy as np
import pytest
from astropy.io import fits
from astropy.nddata import NDData
from astropy.wcs import WCS
from helpers import make_band_hdus

from picasso_astro import PicassoInputError, PicassoWarning, PropertyMaps, predict
from picasso_astro.exceptions import InferredUnitWarning
from picasso_astro.properties import DEFAULT_PROPERTIES, get_property


def test_outputs_have_shape_units_wcs_and_provenance(cutout_files, tiny_model_dir):
    (maps,) = predict(cutout_files, model=tiny_model_dir, device="cpu")
    assert isinstance(maps, PropertyMaps)
    assert maps.names == DEFAULT_PROPERTIES
    reference = WCS(fits.getheader(cutout_files[2]))
    for name, nd in maps.items():
        assert isinstance(nd, NDData)
        assert nd.data.shape == (48, 40)
        assert nd.uncertainty.array.shape == (48, 40)
        assert nd.uncertainty.uncertainty_type == "std"
        assert np.all(nd.uncertainty.array >= 0)
        assert nd.unit == get_property(name).unit
        # The galaxy's middle is its footprint; the sky around it is masked.
        assert nd.mask.shape == (48, 40) and not nd.mask[16:32, 12:28].any()
        assert nd.mask[0, 0] and maps.flagged("sky")[0, 0]
        assert nd.wcs.wcs.compare(reference.wcs)
    assert maps["stellar_mass"].unit == u.dex(u.Msun / u.kpc**2)
    assert maps.meta["model"] == "tiny-test"
    assert maps.meta["model_revision"] == "t1"
    assert sorted(maps.meta["inputs"]) == sorted(str(p) for p in cutout_files)
    assert maps.meta["package_version"]


def test_band_order_does_not_matter(cutout_files, tiny_model_dir):
    (first,) = predict(cutout_files, model=tiny_model_dir)
    (second,) = predict(cutout_files[::-1], model=tiny_model_dir)
    for name in first:
        np.testing.assert_array_equal(first[name].data, second[name].data)


def test_cube_gives_same_maps_as_files(cutout_files, tiny_model_dir):
    cube = np.stack([fits.getdata(p) for p in cutout_files])
    header = fits.getheader(cutout_files[0])
    del header["FILTER"]
    (from_cube,) = predict(
        NDData(cube, wcs=WCS(header), unit="nmgy"), model=tiny_model_dir
    )
    (from_files,) = predict(cutout_files, model=tiny_model_dir)
    np.testing.assert_allclose(from_cube["sfr"].data, from_files["sfr"].data)


def test_misaligned_bands_are_reprojected(tiny_model_dir):
    aligned = make_band_hdus(shape=(64, 64), noise=0.0)
    # The g band covers the same sky on a grid shifted by (3, -2) pixels.
    shifted = make_band_hdus(shape=(64, 64), shift={"g": (3.0, -2.0)}, noise=0.0)
    (maps,) = predict(dict(shifted), model=tiny_model_dir)
    (reference,) = predict(dict(aligned), model=tiny_model_dir)
    assert "reprojected" in str(maps.meta["preprocessing"]["alignment"]["g"])
    inner = (slice(8, -8), slice(8, -8))
    # Edge pixels outside the shifted g grid are off the image; inside, the
    # maps agree with the aligned ones up to interpolation and noise.
    off = maps.flagged("off_image")
    assert off.any() and not off[inner].any()
    assert not reference.flagged("off_image").any()
    diff = maps["stellar_mass"].data[inner] - reference["stellar_mass"].data[inner]
    assert np.median(np.abs(diff)) < 0.02


def test_bands_on_different_sky_are_refused(tiny_model_dir):
    hdus = make_band_hdus()
    far = make_band_hdus(crval=(151.0, 2.0))
    hdus["i"] = far["i"]
    with pytest.raises(
        PicassoInputError, match="not cutouts of the same galaxy; check that the"
    ):
        predict(dict(hdus), model=tiny_model_dir)


def test_skip_keeps_going_and_warns(tmp_path, cutout_files, tiny_model_dir):
    bad = tmp_path / "broken-r.fits"
    bad.write_bytes(b"SIMPLE  = garbage")
    with pytest.warns(PicassoWarning, match="broken-r.fits"):
        results = predict([*cutout_files, bad], model=tiny_model_dir, on_error="skip")
    assert sum(r is None for r in results) == 1
    assert sum(isinstance(r, PropertyMaps) for r in results) == 1
    with pytest.raises(PicassoInputError, match="broken-r.fits"):
        predict([*cutout_files, bad], model=tiny_model_dir)


def test_large_images_are_tiled(tiny_model_dir):
    hdus = make_band_hdus(shape=(150, 130))
    (tiled,) = predict(dict(hdus), model=tiny_model_dir, tile_size=96)
    (whole,) = predict(dict(hdus), model=tiny_model_dir, tile_size=512)
    assert tiled.shape == whole.shape == (150, 130)
    assert np.all(np.isfinite(tiled["sfr"].data))
    # GroupNorm statistics differ per tile, so tiles agree only approximately.
    diff = np.abs(tiled["sfr"].data - whole["sfr"].data)
    assert np.median(diff) < 0.5


def test_bad_options(cutout_files, tiny_model_dir):
    with pytest.raises(ValueError, match="on_error"):
        predict(cutout_files, model=tiny_model_dir, on_error="ignore")
    with pytest.raises(ValueError, match="batch_size"):
        predict(cutout_files, model=tiny_model_dir, batch_size=0)
    with pytest.raises(PicassoInputError, match="unknown device 'abacus'; use"):
        predict(cutout_files, model=tiny_model_dir, device="abacus")


def test_batches_give_same_results_as_single(tmp_path, tiny_model_dir):
    paths = []
    for seed in range(3):
        for band, hdu in make_band_hdus(seed=seed).items():
            path = tmp_path / f"g{seed}-{band}.fits"
            hdu.writeto(path)
            paths.append(path)
    batched = predict(paths, model=tiny_model_dir, batch_size=3)
    single = predict(paths, model=tiny_model_dir, batch_size=1)
    for a, b in zip(batched, single, strict=True):
        assert a.meta["galaxy"] == b.meta["galaxy"]
        np.testing.assert_allclose(a["hi"].data, b["hi"].data, atol=1e-5)


def test_celeste_stamps_end_to_end(shared_data, tiny_model_dir, tmp_path):
    stamps = sorted((shared_data / "sdss" / "stamps-celeste").glob("stamp-*.fits"))
    # No BUNIT: the unit comes from the noise, and predict says so.
    with pytest.warns(InferredUnitWarning, match="no BUNIT in the ugriz"):
        results = predict(stamps, model=tiny_model_dir)
    assert len(results) == 2
    for maps in results:
        assert maps.shape == (51, 51)
        path = maps.write(tmp_path / f"{maps.meta['galaxy']}.fits")
        assert PropertyMaps.read(path).meta == maps.meta


def test_import_is_light():
    import subprocess

    code = (
        "import sys, picasso_astro; "
        "bad = [m for m in sys.modules if m.startswith('picasso_astro.training') "
        "or m.startswith('matplotlib')]; print(bad); assert not bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_no_warnings_on_clean_input(cutout_files, tiny_model_dir):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        predict(cutout_files, model=tiny_model_dir)
