"""Frames read in part: the rows around the galaxies, decoding only their blocks.

Synthetic bzip2-compressed frames made here test the reader everywhere; the
real frames in ../shared/data test that the maps do not change.
"""

import bz2
import importlib.util
import sys

import numpy as np
import pytest
from astropy.io import fits
from astropy.wcs import WCS

from picasso_astro import _bz2fits

HAS_INDEXED_BZIP2 = importlib.util.find_spec("indexed_bzip2") is not None
needs_indexed_bzip2 = pytest.mark.skipif(
    not HAS_INDEXED_BZIP2, reason="indexed_bzip2 is not installed"
)


@pytest.fixture(autouse=True)
def fresh_caches():
    """Each test starts with nothing known of any file."""
    _bz2fits.clear_cache()
    yield
    _bz2fits.clear_cache()


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
    with pytest.raises(_bz2fits.Unsupported, match="not a bzip2 file"):
        _bz2fits.CompressedFITS(plain)
    # Without indexed_bzip2, the standard library reads the header.
    monkeypatch.setitem(sys.modules, "indexed_bzip2", None)
    assert not _bz2fits.available()
    assert _bz2fits.read_header(path) == hdus[0].header
    with pytest.raises(_bz2fits.Unsupported, match="indexed_bzip2"):
        _bz2fits.CompressedFITS(path)
