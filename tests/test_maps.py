import numpy as np
import pytest
from astropy.io import fits

from picasso_astro import PicassoInputError, PropertyMaps, predict


@pytest.fixture
def maps(cutout_files, tiny_model_dir):
    (result,) = predict(cutout_files, model=tiny_model_dir)
    result["sfr"].mask[:3, :4] = True
    return result


def test_fits_round_trip_is_exact(maps, tmp_path):
    path = maps.write(tmp_path / "out.fits")
    back = PropertyMaps.read(path)
    assert back.names == maps.names
    assert back.meta == maps.meta
    for name, nd in maps.items():
        np.testing.assert_array_equal(back[name].data, nd.data)
        np.testing.assert_array_equal(
            back[name].uncertainty.array, nd.uncertainty.array
        )
        assert back[name].unit == nd.unit
        assert back[name].wcs.wcs.compare(nd.wcs.wcs)
    np.testing.assert_array_equal(back["sfr"].mask, maps["sfr"].mask)


@pytest.mark.parametrize("length", [1, 47, 56, 68, 69, 200])
def test_provenance_of_any_length_round_trips(maps, tmp_path, length):
    # JSON of 47-68 characters once left no room for the card's comment.
    maps.meta = {"galaxy": "g" * max(length - 13, 0)}
    back = PropertyMaps.read(maps.write(tmp_path / "out.fits"))
    assert back.meta == maps.meta


def test_file_layout(maps, tmp_path):
    path = maps.write(tmp_path / "out.fits")
    with fits.open(path, checksum=True) as hdulist:
        # written without a second verification: it must be standard FITS
        hdulist.verify("exception")
        names = [hdu.name for hdu in hdulist]
        assert names[1:3] == ["SFR", "SFR_ERR"]
        assert "MASK" in names
        assert hdulist["STELLAR_MASS"].header["BUNIT"] == "dex(solMass / kpc2)"
        assert hdulist[0].header["MODEL"] == "tiny-test"
        assert hdulist[0].header["NINPUTS"] == 5
        assert hdulist["SFR"].header["CTYPE1"] == "RA---TAN"


def test_write_is_atomic_and_refuses_overwrite(maps, tmp_path):
    tmp_path = tmp_path / "out"
    tmp_path.mkdir()
    path = tmp_path / "out.fits"
    path.write_bytes(b"precious")
    with pytest.raises(FileExistsError, match="overwrite"):
        maps.write(path)
    assert path.read_bytes() == b"precious"
    maps.write(path, overwrite=True)
    assert [p.name for p in tmp_path.iterdir()] == ["out.fits"]


def test_failed_write_leaves_nothing(maps, tmp_path, monkeypatch):
    def boom(*args, **kwargs):
        raise OSError("device on fire")

    monkeypatch.setattr(fits.HDUList, "writeto", boom)
    with pytest.raises(PicassoInputError, match="device on fire.*no partial file"):
        maps.write(tmp_path / "out" / "out.fits")
    assert list((tmp_path / "out").iterdir()) == []


def test_read_refuses_other_files(tmp_path):
    other = tmp_path / "other.fits"
    fits.PrimaryHDU(np.zeros((3, 3))).writeto(other)
    with pytest.raises(PicassoInputError, match="not a picasso_astro maps file"):
        PropertyMaps.read(other)
    text = tmp_path / "text.fits"
    text.write_text("hello")
    with pytest.raises(PicassoInputError, match="not a readable FITS file"):
        PropertyMaps.read(text)


def test_getitem_names_known_maps(maps):
    with pytest.raises(KeyError, match="stellar_mass"):
        maps["dust"]
    assert "sfr" in maps and len(maps) == 5
    assert "tiny-test" in repr(maps)


def test_written_file_has_normal_permissions(maps, tmp_path):
    import os

    umask = os.umask(0)
    os.umask(umask)
    path = maps.write(tmp_path / "out" / "perm.fits")
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask


def test_one_mask_is_written_and_a_changed_one_is_kept(maps, tmp_path):
    # The fixture masked a corner of the sfr map only; mask a pixel of the
    # galaxy too (the corner is sky, masked in every map already).
    maps["sfr"].mask[24, 20] = True
    others = [name for name in maps.names if name != "sfr"]
    for name in others:
        np.testing.assert_array_equal(maps[name].mask, maps.footprint_mask())
    assert maps["sfr"].mask[:3, :4].all() and not maps["hi"].mask[24, 20]
    # Each map has its own copy: changing one changes no other.
    assert maps[others[0]].mask is not maps[others[1]].mask
    path = tmp_path / "maps.fits"
    maps.write(path)
    with fits.open(path) as hdulist:
        own = [hdu.name for hdu in hdulist if hdu.name.endswith("_MASK")]
        assert own == ["SFR_MASK"]
        assert hdulist["MASK"].header["MASKTYPE"] == "BITMASK"
        assert hdulist["MASK"].header["MASKB2"] == "NEIGHBOUR"
    back = PropertyMaps.read(path)
    np.testing.assert_array_equal(back["sfr"].mask, maps["sfr"].mask)
    np.testing.assert_array_equal(back[others[0]].mask, maps.footprint_mask())
    np.testing.assert_array_equal(back.bitmask, maps.bitmask)


def test_intervals_use_the_models_fitted_95_percent_width(maps, tmp_path):
    # the tiny model has fitted none: the Gaussian's 1.96
    assert maps.meta["interval_95"] == {
        name: pytest.approx(1.959964) for name in maps.names
    }
    maps.meta["interval_95"]["sfr"] = 2.5
    nd = maps["sfr"]
    lower, upper = maps.interval("sfr", 0.95)
    assert lower.unit == nd.unit
    np.testing.assert_allclose(
        upper.value - nd.data, 2.5 * nd.uncertainty.array, rtol=1e-6
    )
    np.testing.assert_allclose(
        nd.data - lower.value, 2.5 * nd.uncertainty.array, rtol=1e-6
    )
    lower, upper = maps.interval("sfr")
    np.testing.assert_allclose(
        upper.value - lower.value, 2 * nd.uncertainty.array, rtol=1e-6
    )
    with pytest.raises(PicassoInputError, match="0.68 or 0.95"):
        maps.interval("sfr", 0.9)
    path = maps.write(tmp_path / "out.fits")
    with fits.open(path) as hdulist:
        assert hdulist["SFR_ERR"].header["INTERV95"] == 2.5
        assert hdulist["HI_ERR"].header["INTERV95"] == pytest.approx(1.959964)
    back = PropertyMaps.read(path)
    np.testing.assert_array_equal(
        back.interval("sfr", 0.95)[1], maps.interval("sfr", 0.95)[1]
    )
