"""The SDSS frame and psField readers, on real files from ../shared/data."""

import bz2
import importlib.util
import sys

import numpy as np
import pytest
from astropy.coordinates import SkyCoord
from astropy.io import fits
from astropy.stats import sigma_clipped_stats
from sdss_helpers import FIELD_2583, FIELD_4510, SDSS, SUBIMAGE, get_field

from picasso_astro import preprocess, sdss
from picasso_astro._psf import fit_fwhm
from picasso_astro.exceptions import PicassoInputError
from picasso_astro.images import PIXEL_SCALE

pytestmark = pytest.mark.shared_data

HAS_INDEXED_BZIP2 = importlib.util.find_spec("indexed_bzip2") is not None

#: Both bzip2 decoders; ``sdss`` falls back to the standard library when
#: ``indexed_bzip2`` cannot be imported.
DECODERS = [
    "stdlib",
    pytest.param(
        "indexed_bzip2",
        marks=pytest.mark.skipif(
            not HAS_INDEXED_BZIP2, reason="indexed_bzip2 is not installed"
        ),
    ),
]


@pytest.fixture(params=DECODERS)
def decoder(request, monkeypatch):
    """Run the test with each bzip2 decoder."""
    if request.param == "stdlib":
        monkeypatch.setitem(sys.modules, "indexed_bzip2", None)
    return request.param


def test_parse_frame_name():
    name = sdss.parse_frame_name("/x/frame-r-004510-4-0030.fits.bz2")
    assert name == sdss.FrameName("r", 4510, 4, 30)
    assert name.key == (4510, 4, 30)
    assert sdss.parse_frame_name("fpM-002583-g2-0136.fits") is None


def test_gain_table_agrees_with_psfields(shared_data):
    # The per-field gain and dark variance in psField HDU6 are the truth the
    # table summarises: three psFields, camcols 1, 2 and 6.
    for path, camcol, run in [
        (SDSS / SUBIMAGE / "psField-001000-1-0100.fit", 1, 1000),
        (SDSS / FIELD_2583 / "psField-002583-2-0136.fits", 2, 2583),
        (SDSS / "stamps-celeste" / "psField-003900-6-0269.fit", 6, 3900),
    ]:
        psfield = sdss.read_psfield(path)
        for band in "ugriz":
            gain, dark = sdss.gain_and_dark_variance(band, camcol, run)
            assert gain == pytest.approx(psfield.gain[band], rel=1e-5), (path, band)
            assert dark == pytest.approx(psfield.dark_variance[band], rel=1e-5)


def _sky_by_hand(allsky, xinterp, yinterp, row, col):
    """Bilinear value of the sky grid at one pixel, written out longhand."""
    y = np.clip(yinterp[row], 0, allsky.shape[0] - 1)
    x = np.clip(xinterp[col], 0, allsky.shape[1] - 1)
    y0 = min(int(np.floor(y)), allsky.shape[0] - 2)
    x0 = min(int(np.floor(x)), allsky.shape[1] - 2)
    fy, fx = y - y0, x - x0
    return (
        allsky[y0, x0] * (1 - fy) * (1 - fx)
        + allsky[y0, x0 + 1] * (1 - fy) * fx
        + allsky[y0 + 1, x0] * fy * (1 - fx)
        + allsky[y0 + 1, x0 + 1] * fy * fx
    )


def test_frame_noise_and_sky_follow_the_data_model(shared_data):
    path = SDSS / FIELD_4510 / "frame-r-004510-4-0030.fits.bz2"
    image = get_field(FIELD_4510).image("r")
    with fits.open(path) as hdul:
        img = hdul[0].data.astype(float)
        calib = hdul[1].data.astype(float)
        allsky = hdul[2].data["ALLSKY"][0].astype(float)
        xinterp = hdul[2].data["XINTERP"][0]
        yinterp = hdul[2].data["YINTERP"][0]
        nmgy = hdul[0].header["NMGY"]
    assert image.band == "r"
    assert image.shape == (1489, 2048)
    assert (image.meta["run"], image.meta["camcol"], image.meta["field"]) == (
        4510,
        4,
        30,
    )
    # camcol 4, r band, DR table: gain 4.76, dark variance 1.3225.
    assert image.meta["gain"] == 4.76
    assert image.meta["dark_variance"] == 1.3225
    np.testing.assert_array_equal(image.data, img.astype(np.float32))
    # The calibration vector is the header's NMGY times a flat field near 1.
    assert np.median(calib) / nmgy == pytest.approx(1.0, abs=0.05)
    for row, col in [(0, 0), (100, 1500), (744, 1024), (1488, 2047), (1300, 17)]:
        sky_counts = _sky_by_hand(allsky, xinterp, yinterp, row, col)
        assert image.meta["sky"][row, col] == pytest.approx(
            sky_counts * calib[col], rel=1e-5
        )
        dn = img[row, col] / calib[col] + sky_counts
        expected = calib[col] * np.sqrt(dn / 4.76 + 1.3225)
        assert image.noise[row, col] == pytest.approx(expected, rel=1e-5)


def test_noise_image_matches_pixel_scatter(shared_data):
    # Independent check: the noise model against the scatter of blank sky.
    image = get_field(FIELD_4510).image("r")
    _, _, scatter = sigma_clipped_stats(image.data, sigma=3)
    model = np.median(image.noise)
    assert model == pytest.approx(scatter, rel=0.1)


def test_subimage_frame(shared_data):
    image = sdss.read_frame(SDSS / SUBIMAGE / "frame-r-001000-1-0100.fits.bz2")
    assert image.shape == (100, 100)
    assert image.noise.shape == (100, 100)
    assert np.all(image.noise > 0)
    assert not image.meta["full_frame"]
    _, _, scatter = sigma_clipped_stats(image.data, sigma=3)
    assert np.median(image.noise) == pytest.approx(scatter, rel=0.2)


def test_psfield_psf_is_normalised_and_centred(shared_data):
    psfield = sdss.read_psfield(SDSS / SUBIMAGE / "psField-001000-1-0100.fit")
    for band in "ugriz":
        psf = psfield.psf(band, 700.0, 1000.0)
        assert psf.shape == (51, 51)
        assert psf.sum() == pytest.approx(1.0)
        yy, xx = np.mgrid[0:51, 0:51]
        core = np.hypot(yy - 25, xx - 25) < 8
        cy = (psf * yy)[core].sum() / psf[core].sum()
        cx = (psf * xx)[core].sum() / psf[core].sum()
        assert abs(cy - 25) < 0.2
        assert abs(cx - 25) < 0.2
        assert psfield.psf(band, 700.0, 1000.0, size=25).shape == (25, 25)


def test_psfield_reproduces_photo_psf_image(shared_data):
    # The i-band PSF of field 2583-2-136 does not vary over the frame; its
    # 25x25 image as photo's tools write it is in the data folder.
    psfield = sdss.read_psfield(SDSS / FIELD_2583 / "psField-002583-2-0136.fits")
    reference = fits.getdata(SDSS / FIELD_2583 / "sdss-002583-2-0136-psf-i.fits")
    reference = reference / reference.sum()
    psf = psfield.psf("i", 744.0, 1024.0, size=25)
    np.testing.assert_allclose(psf, reference, atol=2e-5)


@pytest.mark.parametrize("band", ["g", "r", "i"])
def test_psfield_fwhm_matches_stars(shared_data, band):
    # The globular-cluster field: many stars.  The stacked stars' FWHM and
    # the psField PSF's FWHM, measured the same way, agree within 10 %.
    field = get_field(FIELD_2583)
    image = field.image(band)
    psfield = field.psfield_data()
    _, star_fwhm, nstars = preprocess.estimate_psf(image)
    assert nstars >= 20
    psf_fwhm = psfield.fwhm(band, 744.0, 1024.0)
    assert star_fwhm == pytest.approx(psf_fwhm, rel=0.10)
    # psField PSF attached to the frame when the field has one.
    assert image.psf is not None
    assert fit_fwhm(image.psf)[0] * PIXEL_SCALE == pytest.approx(psf_fwhm, rel=1e-3)


def test_find_frames_groups_fields(shared_data):
    fields = sdss.find_frames(SDSS)
    assert (4510, 4, 30) in fields
    assert (2583, 2, 136) in fields
    field = fields[(2583, 2, 136)]
    assert field.bands == tuple("ugriz")
    assert field.psfield.name == "psField-002583-2-0136.fits"
    assert fields[(4510, 4, 30)].psfield is None
    assert fields[(1000, 1, 100)].bands == ("r",)


def test_frames_are_decompressed_once(shared_data):
    field = get_field(FIELD_4510)
    assert field.image("g") is field.image("g")


def test_best_field_index_inside_and_outside(shared_data):
    field = get_field(FIELD_4510)
    inside = field.image("r").wcs.pixel_to_world(1000, 700)
    far = SkyCoord(10.0, -40.0, unit="deg")
    assert list(sdss.best_field_index(SkyCoord([inside, far]), [field])) == [0, -1]


def test_bz2_decoders_give_the_same_frame(shared_data, monkeypatch):
    path = SDSS / SUBIMAGE / "frame-r-001000-1-0100.fits.bz2"
    decoded = sdss.read_frame(path)
    assert sdss._bz2_decoder().startswith(
        "indexed_bzip2" if HAS_INDEXED_BZIP2 else "bz2"
    )
    monkeypatch.setitem(sys.modules, "indexed_bzip2", None)
    assert sdss._bz2_decoder() == "bz2 (stdlib)"
    stdlib = sdss.read_frame(path)
    np.testing.assert_array_equal(decoded.data, stdlib.data)
    np.testing.assert_array_equal(decoded.noise, stdlib.noise)
    np.testing.assert_array_equal(decoded.meta["sky"], stdlib.meta["sky"])


@pytest.mark.parametrize("damage", ["truncated", "garbage", "bit flip", "not bzip2"])
def test_corrupt_frame_gives_clear_error(shared_data, tmp_path, damage, decoder):
    source = SDSS / SUBIMAGE / "frame-r-001000-1-0100.fits.bz2"
    raw = source.read_bytes()
    if damage == "truncated":
        raw = raw[: len(raw) // 2]
    elif damage == "garbage":
        raw = raw[:100] + bytes(range(256)) * 40 + raw[100 + 256 * 40 :]
    elif damage == "bit flip":
        middle = len(raw) // 2
        raw = raw[:middle] + bytes([raw[middle] ^ 0x10]) + raw[middle + 1 :]
    else:
        raw = b"SIMPLE  =                    T" * 100
    bad = tmp_path / source.name
    bad.write_bytes(raw)
    with pytest.raises(
        PicassoInputError, match="corrupt or truncated; download it again"
    ) as info:
        sdss.read_frame(bad)
    assert str(bad) in str(info.value)


def test_uncompressed_and_missing_frames(shared_data, tmp_path):
    source = SDSS / SUBIMAGE / "frame-r-001000-1-0100.fits.bz2"
    plain = tmp_path / "frame-r-001000-1-0100.fits"
    plain.write_bytes(bz2.decompress(source.read_bytes()))
    image = sdss.read_frame(plain)
    assert image.meta["run"] == 1000
    with pytest.raises(PicassoInputError, match="does not exist; check the path"):
        sdss.read_frame(tmp_path / "frame-r-001000-1-0101.fits.bz2")


def test_download_frames_through_astropy_cache(tmp_path, monkeypatch):
    from astropy.config import set_temp_cache

    from picasso_astro import sdss

    served = tmp_path / "sas"
    served.mkdir()
    for band in "gr":
        (served / f"frame-{band}-000094-1-0012.fits.bz2").write_bytes(b"x" * 10)
    template = served.as_uri() + "/frame-{band}-{run:06d}-{camcol}-{field:04d}.fits.bz2"
    monkeypatch.setattr(sdss, "SAS_FRAME_URL", template)
    with set_temp_cache(tmp_path / "astropy-cache"):
        out = sdss.download_frames(94, 1, 12, bands="gr", directory=tmp_path / "f")
        assert sorted(p.name for p in out.iterdir()) == [
            "frame-g-000094-1-0012.fits.bz2",
            "frame-r-000094-1-0012.fits.bz2",
        ]
        with pytest.raises(PicassoInputError, match="could not fetch"):
            sdss.download_frames(94, 1, 13, bands="g", directory=tmp_path / "h")


@pytest.fixture
def sas_server(tmp_path):
    """An HTTP server on 127.0.0.1 serving ``tmp_path / "sas"``; yields its URL."""
    import functools
    import threading
    from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

    class Quiet(SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    served = tmp_path / "sas"
    served.mkdir()
    handler = functools.partial(Quiet, directory=str(served))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield served, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_download_frames_with_psfield_over_http(sas_server, tmp_path, monkeypatch):
    from astropy.config import set_temp_cache

    served, url = sas_server
    for band in "ugriz":
        (served / f"frame-{band}-000094-1-0012.fits.bz2").write_bytes(band.encode())
    (served / "psField-000094-1-0012.fit").write_bytes(b"psf")
    monkeypatch.setattr(
        sdss,
        "SAS_FRAME_URL",
        url + "/frame-{band}-{run:06d}-{camcol}-{field:04d}.fits.bz2",
    )
    monkeypatch.setattr(
        sdss, "SAS_PSFIELD_URL", url + "/psField-{run:06d}-{camcol}-{field:04d}.fit"
    )
    with set_temp_cache(tmp_path / "astropy-cache"):
        without = sdss.download_frames(94, 1, 12, directory=tmp_path / "a")
        assert not list(without.glob("psField-*"))
        out = sdss.download_frames(94, 1, 12, directory=tmp_path / "b", psfield=True)
        psfield = out / "psField-000094-1-0012.fit"
        assert psfield.read_bytes() == b"psf"
        assert (out / "frame-z-000094-1-0012.fits.bz2").read_bytes() == b"z"
        # Beside the frames, the psField belongs to their field.
        (field,) = sdss.find_frames(out).values()
        assert field.psfield == psfield
        assert field.bands == tuple("ugriz")
        # A field without a psField on the server: a clear error.
        for band in "ugriz":
            (served / f"frame-{band}-000094-1-0013.fits.bz2").write_bytes(b"x")
        with pytest.raises(PicassoInputError, match="could not fetch .*psField"):
            sdss.download_frames(94, 1, 13, directory=tmp_path / "c", psfield=True)
