"""Frames read in part: the rows around the galaxies, decoding only their blocks.

Synthetic bzip2-compressed frames made here test the reader everywhere; the
real frames in ../shared/data test that the maps do not change.
"""

import bz2
import importlib.util
import sys
import warnings

import numpy as np
import pytest
from astropy.coordinates import SkyCoord
from astropy.io import fits
from astropy.wcs import WCS

from picasso_astro import _bz2fits, _psf, predict, sdss
from picasso_astro._wcs import read_wcs
from picasso_astro.exceptions import PicassoInputError, PicassoWarning
from picasso_astro.preprocess import frame_read_size, prepare_target

HAS_INDEXED_BZIP2 = importlib.util.find_spec("indexed_bzip2") is not None
needs_indexed_bzip2 = pytest.mark.skipif(
    not HAS_INDEXED_BZIP2, reason="indexed_bzip2 is not installed"
)


@pytest.fixture(autouse=True)
def fresh_caches():
    """Each test starts with nothing known of any file."""
    _bz2fits.clear_cache()
    _psf.forget_star_psfs()
    yield
    _bz2fits.clear_cache()
    _psf.forget_star_psfs()


def frame_hdus(shape=(420, 300), *, band="r", seed=0, runs=False):
    """An SDSS-like corrected frame: image, calibration, sky grid, astrometry.

    ``runs``: the image bytes hold many runs of four equal bytes, which bzip2
    stores in five, so that its blocks hold fewer bytes than usual.
    """
    rng = np.random.default_rng(seed)
    ny, nx = shape
    if runs:
        pattern = np.frombuffer(b"AAAAB", np.uint8)
        raw = np.resize(pattern, ny * nx * 4).copy()
        noisy = rng.random(raw.size) < 0.02
        raw[noisy] = rng.integers(0, 256, int(noisy.sum()), dtype=np.uint8)
        image = raw.view(">f4").reshape(shape)
        image = np.where(np.isfinite(image), image, 0.0).astype(">f4")
    else:
        image = rng.normal(0.0, 0.05, shape).astype(">f4")
        yy, xx = np.mgrid[0:ny, 0:nx]
        image += (5 * np.exp(-((yy - 200) ** 2 + (xx - 150) ** 2) / 50)).astype(">f4")
    wcs = WCS(naxis=2)
    wcs.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    wcs.wcs.crval = [150.0, 2.0]
    wcs.wcs.crpix = [nx / 2 + 0.5, ny / 2 + 0.5]
    wcs.wcs.cd = [[0, 0.396 / 3600], [0.396 / 3600, 0]]
    header = wcs.to_header()
    header.update(FILTER=band, RUN=94, CAMCOL=1, FRAME=12, NMGY=0.005)
    header["BUNIT"] = "nanomaggy"
    calib = (0.005 * (1 + 0.01 * rng.normal(size=nx))).astype(np.float32)
    grid = (100 + rng.normal(0, 1, (8, 6))).astype(np.float32)
    sky = fits.BinTableHDU.from_columns(
        [
            fits.Column("ALLSKY", f"{grid.size}E", dim=f"({6},{8})", array=[grid]),
            fits.Column(
                "XINTERP", f"{nx}E", array=[np.linspace(-0.5, 5.5, nx, dtype="f4")]
            ),
            fits.Column(
                "YINTERP", f"{ny}E", array=[np.linspace(-0.5, 7.5, ny, dtype="f4")]
            ),
        ]
    )
    astrometry = fits.BinTableHDU.from_columns(
        [fits.Column("RUN", "J", array=[94]), fits.Column("NODE", "D", array=[95.0])]
    )
    return fits.HDUList(
        [fits.PrimaryHDU(image, header=header), fits.ImageHDU(calib), sky, astrometry]
    )


def write_frame(path, hdus, *, level=1):
    """Write a frame as SDSS does (bzip2), in 100 kB blocks by default."""
    plain = path.with_suffix("")
    hdus.writeto(plain)
    raw = plain.read_bytes()
    plain.unlink()
    path.write_bytes(bz2.compress(raw, compresslevel=level))
    return raw


def first_extension(header, primary):
    """The frame's HDU1: a vector with one value per image column."""
    return header.get("NAXIS") == 1 and header.get("NAXIS1") == primary["NAXIS1"]


def read_rows(path, start, stop):
    with _bz2fits.CompressedFITS(path, first_extension=first_extension) as view:
        with fits.open(view) as hdul:
            rows = np.array(hdul[0].section[start:stop])
            extensions = [hdu.data.copy() for hdu in hdul[1:]]
            header = hdul[0].header.copy()
        return rows, extensions, header, view.decoded


# --- the reader -------------------------------------------------------------


@needs_indexed_bzip2
@pytest.mark.parametrize("runs", [False, True], ids=["noise", "short runs"])
@pytest.mark.parametrize(
    ("start", "stop"),
    [(0, 30), (380, 420), (150, 260), (270, 290), (5, 415), (0, 420)],
)
def test_rows_read_in_part_are_the_whole_files_rows(tmp_path, start, stop, runs):
    hdus = frame_hdus(runs=runs)
    path = tmp_path / "frame-r-000094-1-0012.fits.bz2"
    raw = write_frame(path, hdus)
    rows, extensions, header, decoded = read_rows(path, start, stop)
    np.testing.assert_array_equal(rows, hdus[0].data[start:stop])
    assert header == hdus[0].header
    np.testing.assert_array_equal(extensions[0], hdus[1].data)
    for name in ("ALLSKY", "XINTERP", "YINTERP"):
        np.testing.assert_array_equal(extensions[1][name], hdus[2].data[name])
    np.testing.assert_array_equal(extensions[2]["RUN"], hdus[3].data["RUN"])
    if (start, stop) in [(0, 30), (380, 420)]:
        # Rows at either end: far less than the file is decoded.
        assert decoded < 0.5 * len(raw)


@needs_indexed_bzip2
def test_what_is_learnt_of_a_file_is_reused(tmp_path):
    hdus = frame_hdus()
    path = tmp_path / "frame-r-000094-1-0012.fits.bz2"
    raw = write_frame(path, hdus)
    *_, first = read_rows(path, 200, 240)
    rows, _, _, again = read_rows(path, 190, 240)
    np.testing.assert_array_equal(rows, hdus[0].data[190:240])
    # The header and small HDUs are known, and a block near the rows.
    assert again < first
    assert again < 0.4 * len(raw)
    # A changed file is a new file.
    write_frame(path, frame_hdus(seed=1), level=2)
    rows, *_ = read_rows(path, 190, 240)
    np.testing.assert_array_equal(rows, frame_hdus(seed=1)[0].data[190:240])


@needs_indexed_bzip2
def test_block_finder_agrees_with_indexed_bzip2(tmp_path):
    import indexed_bzip2

    path = tmp_path / "frame-r-000094-1-0012.fits.bz2"
    write_frame(path, frame_hdus())
    with indexed_bzip2.open(str(path)) as stream:
        offsets = sorted(stream.block_offsets())
    # indexed_bzip2's last offset is the end of the stream, not a block.
    np.testing.assert_array_equal(_bz2fits.find_blocks(path.read_bytes()), offsets[:-1])
    assert len(offsets) > 5


def test_header_alone_and_the_fallbacks(tmp_path, monkeypatch):
    hdus = frame_hdus()
    path = tmp_path / "frame-r-000094-1-0012.fits.bz2"
    write_frame(path, hdus)
    assert _bz2fits.read_header(path) == hdus[0].header
    plain = tmp_path / "frame-r-000094-1-0012.fits"
    hdus.writeto(plain)
    assert _bz2fits.read_header(plain) == hdus[0].header
    if HAS_INDEXED_BZIP2:
        with pytest.raises(_bz2fits.Unsupported, match="not a bzip2 file"):
            _bz2fits.CompressedFITS(plain)
    # Without indexed_bzip2, the standard library reads the header.
    monkeypatch.setitem(sys.modules, "indexed_bzip2", None)
    assert not _bz2fits.available()
    assert _bz2fits.read_header(path) == hdus[0].header
    with pytest.raises(_bz2fits.Unsupported, match="indexed_bzip2"):
        _bz2fits.CompressedFITS(path)


# --- read_frame and SDSSField -----------------------------------------------


@pytest.mark.parametrize("suffix", [".fits.bz2", ".fits"])
@pytest.mark.parametrize("centre", [12, 200, 405])
def test_read_frame_around_positions(tmp_path, suffix, centre):
    hdus = frame_hdus()
    path = tmp_path / f"frame-r-000094-1-0012{suffix}"
    if suffix == ".fits":
        hdus.writeto(path)
    else:
        write_frame(path, hdus)
    whole = sdss.read_frame(path)
    wcs = whole.wcs
    positions = SkyCoord([wcs.pixel_to_world(100, centre)])
    part = sdss.read_frame(path, around=(positions, 40))
    if suffix == ".fits.bz2" and not HAS_INDEXED_BZIP2:
        assert "frame_rows" not in part.meta
        return
    start, stop = part.meta["frame_rows"]
    half = 20 + sdss.ROW_MARGIN
    assert start <= max(centre - half, 0) and stop >= min(centre + half + 1, 420)
    assert stop - start <= 2 * half + 3
    assert part.meta["frame_shape"] == whole.shape
    np.testing.assert_array_equal(part.data, whole.data[start:stop])
    np.testing.assert_array_equal(part.noise, whole.noise[start:stop])
    np.testing.assert_array_equal(part.mask, whole.mask[start:stop])
    np.testing.assert_array_equal(part.meta["sky"], whole.meta["sky"][start:stop])
    np.testing.assert_array_equal(part.meta["calib"], whole.meta["calib"])
    assert part.meta["full_frame"] == whole.meta["full_frame"]
    assert part.meta["frame_wcs"].to_header() == wcs.to_header()
    # The WCS of the rows read: their own pixels.
    x, y = part.wcs.world_to_pixel(positions[0])
    assert (float(x), float(y)) == pytest.approx((100, centre - start), abs=1e-8)
    # Squares that cover every row: the whole frame.
    everything = sdss.read_frame(path, around=(positions, 2000))
    assert "frame_rows" not in everything.meta


def test_read_frame_whole_without_indexed_bzip2(tmp_path, monkeypatch):
    path = tmp_path / "frame-r-000094-1-0012.fits.bz2"
    hdus = frame_hdus()
    write_frame(path, hdus)
    monkeypatch.setitem(sys.modules, "indexed_bzip2", None)
    positions = SkyCoord([read_wcs(hdus[0].header, "test").pixel_to_world(100, 200)])
    image = sdss.read_frame(path, around=(positions, 40))
    assert "frame_rows" not in image.meta
    np.testing.assert_array_equal(image.data, hdus[0].data)


@needs_indexed_bzip2
def test_damage_outside_the_rows_read_falls_back_to_the_usual_error(tmp_path):
    path = tmp_path / "frame-r-000094-1-0012.fits.bz2"
    write_frame(path, frame_hdus())
    raw = bytearray(path.read_bytes())
    # The last block (the small HDUs) damaged.
    raw[-200] ^= 0x10
    path.write_bytes(bytes(raw))
    positions = SkyCoord(
        [read_wcs(frame_hdus()[0].header, "test").pixel_to_world(0, 5)]
    )
    with pytest.raises(PicassoInputError, match="corrupt or truncated"):
        sdss.read_frame(path, around=(positions, 20))


def _field(folder, seed=0):
    paths = {}
    for number, band in enumerate("ugriz"):
        path = folder / f"frame-{band}-000094-1-0012.fits.bz2"
        write_frame(path, frame_hdus(band=band, seed=seed + number))
        paths[band] = path
    return sdss.SDSSField(94, 1, 12, paths=paths)


def test_rows_only_where_they_give_the_whole_frames_pixels(tmp_path):
    # No psField: a PSF from stars needs the whole frame, the first time.
    field = _field(tmp_path)
    wcs, _ = field.geometry()
    coord = wcs.pixel_to_world(150, 200)
    options = {"psf_fwhm": 1.4, "pad": 16}
    side = frame_read_size(48, options=options)
    around = (SkyCoord([coord]), side)
    first = field.images(around=around)
    assert all("frame_rows" not in image.meta for image in first.values())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PicassoWarning)
        whole = prepare_target(first, coord, size=48, options=options)
    # Star PSFs measured (or found missing) on the whole frames: now rows do.
    again = sdss.SDSSField(94, 1, 12, paths=dict(field.paths))
    images = again.images(around=around)
    if HAS_INDEXED_BZIP2:
        assert all("frame_rows" in image.meta for image in images.values())
        # Reused while they hold what is asked, read again when not.
        assert again.image("r", around=around) is images["r"]
        farther = (SkyCoord([wcs.pixel_to_world(150, 20)]), side)
        assert again.image("r", around=farther) is not images["r"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PicassoWarning)
        part = prepare_target(images, coord, size=48, options=options)
    cube, mask = whole.cube()
    part_cube, part_mask = part.cube()
    np.testing.assert_array_equal(part_cube, cube)
    np.testing.assert_array_equal(part_mask, mask)
    np.testing.assert_array_equal(part.bitmask, whole.bitmask)
    assert part.wcs.to_header() == whole.wcs.to_header()
    assert part.steps == whole.steps
    for band in "ugriz":
        meta, whole_meta = part.images[band].meta, whole.images[band].meta
        assert meta.keys() == whole_meta.keys()
        for key, value in meta.items():
            np.testing.assert_array_equal(value, whole_meta[key])


def test_a_cutout_beyond_the_rows_read_is_refused(tmp_path):
    if not HAS_INDEXED_BZIP2:
        pytest.skip("indexed_bzip2 is not installed")
    field = _field(tmp_path)
    wcs, _ = field.geometry()
    coord = wcs.pixel_to_world(150, 200)
    images = {
        band: sdss.read_frame(path, around=(SkyCoord([coord]), 30))
        for band, path in field.paths.items()
    }
    with pytest.raises(ValueError, match="outside the rows"):
        prepare_target(images, coord, size=48, background=False, match_psf=False)


def test_star_psfs_are_kept_per_frame_file(monkeypatch):
    from picasso_astro.images import BandImage

    calls = []
    measure = _psf.estimate_psf

    def counting(image, **kwargs):
        calls.append(image.band)
        return measure(image, **kwargs)

    monkeypatch.setattr(_psf, "estimate_psf", counting)
    rng = np.random.default_rng(3)
    frame_id = ("frame-r-000094-1-0012.fits.bz2", 100, 7)
    frame = BandImage("r", rng.normal(0, 0.05, (96, 96)), meta={"frame_id": frame_id})
    assert not _psf.star_psf_known(frame_id)
    assert _psf.psf_for_band(frame, fallback_fwhm=1.4)[2] == "fwhm"
    assert _psf.star_psf_known(frame_id)
    # The same file read again (new pixels): not measured again.
    again = BandImage("r", frame.data.copy(), meta=dict(frame.meta))
    del frame
    assert _psf.psf_for_band(again, fallback_fwhm=1.4)[2] == "fwhm"
    assert calls == ["r"]
    # Rows of a frame whose stars were never measured: not measured on them.
    rows = BandImage(
        "g",
        again.data[:40],
        meta={"frame_id": ("other", 1, 2), "frame_rows": (0, 40)},
    )
    with pytest.raises(ValueError, match="whole frame"):
        _psf.psf_for_band(rows, fallback_fwhm=1.4)


# --- real frames --------------------------------------------------------------

#: Frame pixels (x, y) of galaxies: at the first and last rows, the middle,
#: the left and right edges, and half off the frame's first row.
EDGES = [(1000, 20), (1000, 1470), (500, 744), (5, 300), (2040, 1100), (1500, 3)]


def _maps_by_read(folder, model, *, whole, monkeypatch):
    """Map every galaxy of ``EDGES`` on its own, frames whole or in part."""
    real = sdss.read_frame
    rows = []

    def reading(path, **kwargs):
        if whole:
            kwargs.pop("around", None)
        image = real(path, **kwargs)
        rows.append(image.meta.get("frame_rows"))
        return image

    monkeypatch.setattr(sdss, "read_frame", reading)
    (field,) = sdss.find_frames(folder).values()
    wcs, _ = field.geometry()
    maps = []
    for x, y in EDGES:
        fields = sdss.find_frames(folder)
        maps += predict(
            fields,
            targets=SkyCoord([wcs.pixel_to_world(x, y)]),
            model=model,
            device="cpu",
            preprocessing={"psf_fwhm": 1.4},
            progress=False,
        )
    monkeypatch.setattr(sdss, "read_frame", real)
    return maps, rows


def _assert_same_maps(first, second):
    for a, b in zip(first, second, strict=True):
        assert a.names == b.names
        for name in a.names:
            np.testing.assert_array_equal(a[name].data, b[name].data)
            np.testing.assert_array_equal(
                a[name].uncertainty.array, b[name].uncertainty.array
            )
        np.testing.assert_array_equal(a.bitmask, b.bitmask)
        assert a.wcs.to_header() == b.wcs.to_header()
        assert a.meta["preprocessing"] == b.meta["preprocessing"]


@pytest.mark.shared_data
@pytest.mark.filterwarnings("ignore::picasso_astro.exceptions.TargetWarning")
@needs_indexed_bzip2
def test_maps_from_rows_equal_maps_from_whole_frames(
    shared_data, model_64, monkeypatch
):
    # Field 2583 has a psField: nothing needs the whole frame.
    folder = shared_data / "sdss" / "field-002583-2-0136"
    whole, whole_rows = _maps_by_read(
        folder, model_64, whole=True, monkeypatch=monkeypatch
    )
    assert set(whole_rows) == {None}
    part, part_rows = _maps_by_read(
        folder, model_64, whole=False, monkeypatch=monkeypatch
    )
    assert None not in part_rows
    assert max(stop - start for start, stop in part_rows) < 400
    _assert_same_maps(whole, part)


@pytest.mark.shared_data
@pytest.mark.filterwarnings("ignore::picasso_astro.exceptions.TargetWarning")
@needs_indexed_bzip2
def test_maps_from_rows_after_stars_measured_on_whole_frames(
    shared_data, model_64, monkeypatch
):
    # Field 4510 has no psField: the first galaxy's frames are read whole (its
    # stars give the PSF), the next galaxies' in part.
    folder = shared_data / "sdss" / "field-004510-4-0030"
    part, part_rows = _maps_by_read(
        folder, model_64, whole=False, monkeypatch=monkeypatch
    )
    assert part_rows[:5] == [None] * 5
    assert None not in part_rows[5:]
    whole, whole_rows = _maps_by_read(
        folder, model_64, whole=True, monkeypatch=monkeypatch
    )
    assert set(whole_rows) == {None}
    _assert_same_maps(whole, part)
