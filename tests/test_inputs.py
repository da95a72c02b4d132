import numpy as np
import pytest
from astropy.io import fits
from astropy.nddata import CCDData, NDData
from helpers import make_band_hdus

from picasso_astro import PicassoInputError
from picasso_astro.inputs import band_from_filename, band_from_header, parse_inputs


@pytest.mark.parametrize(
    ("name", "band"),
    [
        ("frame-r-001000-1-0100.fits.bz2", "r"),
        ("stamp-g-164.4311-39.0359.fits", "g"),
        ("ngc4321_z.fits", "z"),
        ("galaxy.u.fit", "u"),
        ("galaxy.fits", None),
        ("g-and-r.fits", None),
    ],
)
def test_band_from_filename(name, band):
    assert band_from_filename(name) == band


@pytest.mark.parametrize(
    ("value", "band"), [("r", "r"), ("SDSS_i", "i"), ("g'", "g"), ("Ha", None)]
)
def test_band_from_header(value, band):
    assert band_from_header(fits.Header({"FILTER": value})) == band


def _write(tmp_path, hdus, pattern="gal-{band}.fits", keep_filter=True):
    paths = []
    for band, hdu in hdus.items():
        if not keep_filter:
            del hdu.header["FILTER"]
        path = tmp_path / pattern.format(band=band)
        hdu.writeto(path)
        paths.append(path)
    return paths


def test_files_are_grouped_into_galaxies(tmp_path):
    paths = _write(tmp_path, make_band_hdus(seed=1), "a-{band}.fits", False)
    paths += _write(tmp_path, make_band_hdus(seed=2), "b_{band}.fits", False)
    galaxies = [g.load() for g in parse_inputs(paths[::-1])]
    assert sorted(g.name for g in galaxies) == ["a", "b"]
    for galaxy in galaxies:
        assert sorted(galaxy.images) == sorted("ugriz")
        assert len(galaxy.sources) == 5


def _error_of(inputs):
    """The error of the one galaxy in ``inputs``, when planned or when loaded."""
    (result,) = parse_inputs(inputs)
    if not isinstance(result, Exception):
        with pytest.raises(PicassoInputError) as info:
            result.load()
        result = info.value
    assert isinstance(result, PicassoInputError)
    return str(result)


def test_missing_band(tmp_path):
    paths = _write(tmp_path, make_band_hdus(bands="ugri"))
    message = _error_of(paths)
    assert "missing band(s) z" in message and "give the missing band's file" in message


def test_duplicate_band(tmp_path):
    hdus = make_band_hdus()
    hdus["z"].header["FILTER"] = "i"
    message = _error_of(_write(tmp_path, hdus))
    assert "band(s) i given more than once" in message
    assert "give exactly one image per band" in message


def test_not_a_fits_file(tmp_path):
    bad = tmp_path / "gal-r.fits"
    bad.write_text("this is not FITS")
    results = parse_inputs([bad])
    assert isinstance(results[0], PicassoInputError)
    assert "not a FITS file" in str(results[0])
    assert "needs FITS images in nanomaggies" in str(results[0])


def test_empty_and_all_nan_images(tmp_path):
    hdus = make_band_hdus()
    hdus["g"].data[:] = np.nan
    assert "every pixel is NaN" in _error_of(_write(tmp_path, hdus))
    empty = tmp_path / "empty"
    empty.mkdir()
    hdus = make_band_hdus()
    hdus["u"] = fits.PrimaryHDU(header=hdus["u"].header)
    message = _error_of(_write(empty, hdus))
    assert "no image data" in message and "give the file that holds" in message


def test_no_wcs(tmp_path):
    hdus = make_band_hdus()
    hdus["i"] = fits.PrimaryHDU(hdus["i"].data, header=fits.Header({"FILTER": "i"}))
    message = _error_of(_write(tmp_path, hdus))
    assert "no celestial WCS" in message and "give cutouts with RA/Dec WCS" in message


def test_band_not_found(tmp_path):
    hdus = make_band_hdus()
    del hdus["r"].header["FILTER"]
    path = tmp_path / "galaxy.fits"
    hdus["r"].writeto(path)
    message = _error_of([path])
    assert "cannot tell its band" in message and "rename it" in message


def test_missing_file(tmp_path):
    assert "no such file; check the path" in _error_of([tmp_path / "nope-r.fits"])


def test_cube_ndddata_hdulist_and_dict_inputs():
    hdus = make_band_hdus()
    cube = np.stack([hdus[b].data for b in "ugriz"])
    header = hdus["r"].header.copy()
    del header["FILTER"]
    from astropy.wcs import WCS

    wcs = WCS(header)
    for item in (
        fits.HDUList([fits.PrimaryHDU(cube, header=header)]),
        NDData(cube, wcs=wcs),
        {b: hdus[b] for b in "ugriz"},
        {b: CCDData(hdus[b].data, unit="nmgy", wcs=wcs) for b in "ugriz"},
    ):
        (galaxy,) = parse_inputs(item)
        assert not isinstance(galaxy, Exception), galaxy
        galaxy = galaxy.load()
        np.testing.assert_array_equal(galaxy.images["z"].data, hdus["z"].data)


def test_counts_are_converted_with_nmgy():
    hdus = make_band_hdus()
    for hdu in hdus.values():
        hdu.header["BUNIT"] = "counts"
        hdu.header["NMGY"] = 0.005
    (galaxy,) = parse_inputs(dict(hdus))
    np.testing.assert_allclose(
        galaxy.images["r"].data, hdus["r"].data * np.float32(0.005), rtol=1e-6
    )


def test_unsupported_type():
    with pytest.raises(TypeError, match="inputs of type int: give FITS file names"):
        parse_inputs([1, 2, 3])


def test_celeste_stamps_are_nanomaggies(shared_data):
    stamps = sorted((shared_data / "sdss" / "stamps-celeste").glob("stamp-*.fits"))
    galaxies = [g.load() for g in parse_inputs(stamps)]
    assert sorted(g.name for g in galaxies) == [
        "stamp-164.4311-39.0359",
        "stamp-5.0073-0.0739",
    ]
    for galaxy in galaxies:
        for image in galaxy.images.values():
            # The stamps hold sky-subtracted nanomaggies (Celeste.jl reads
            # them as pixels / CALIB + SKY): the NMGY factor must not apply.
            assert image.meta["flux_unit"].startswith("nanomaggies")
