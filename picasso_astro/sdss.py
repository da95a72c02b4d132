"""SDSS imaging files: corrected frames, psField PSFs, fields and targets.

Reads SDSS DR8+ corrected frames (``frame-{band}-{run}-{camcol}-{field}.fits``,
usually bzip2-compressed) into `~picasso_astro.images.BandImage` objects with a
per-pixel noise image rebuilt as the SDSS frame data model describes, reads
psField files and reconstructs the KL-basis PSF of any band at any position,
and groups frames into fields so that each file is decompressed once however
many galaxies lie in it.  A frame can be read in part: only the rows around
some positions, decoding only the compressed blocks that hold them (see
`read_frame`'s ``around``).

References
----------
SDSS data model, ``frame``:
https://data.sdss.org/datamodel/files/BOOS_PHOTOOBJ/frames/RERUN/RUN/CAMCOL/frame.html
SDSS data model, ``psField``:
https://data.sdss.org/datamodel/files/PHOTO_REDUX/RERUN/RUN/objcs/CAMCOL/psField.html
"""

import bz2
import io
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from astropy.io import fits
from astropy.wcs import WCS

from . import _bz2fits, _psf
from ._wcs import read_wcs
from .exceptions import PicassoInputError
from .images import BANDS, PIXEL_SCALE, BandImage

__all__ = [
    "DARK_VARIANCE",
    "GAIN",
    "ROW_MARGIN",
    "SAS_FRAME_URL",
    "SAS_PSFIELD_URL",
    "PSField",
    "SDSSField",
    "best_field_index",
    "download_frames",
    "find_frames",
    "frame_id",
    "gain_and_dark_variance",
    "parse_frame_name",
    "read_frame",
    "read_psfield",
]

#: Where the SDSS Science Archive Server keeps DR17 corrected frames.
SAS_FRAME_URL = (
    "https://data.sdss.org/sas/dr17/eboss/photoObj/frames/301/{run}/{camcol}/"
    "frame-{band}-{run:06d}-{camcol}-{field:04d}.fits.bz2"
)

#: Where the SDSS Science Archive Server keeps DR17 psField files (the PSF and
#: CCD parameters of a field, from the photometric pipeline).
SAS_PSFIELD_URL = (
    "https://data.sdss.org/sas/dr17/eboss/photo/redux/301/{run}/objcs/{camcol}/"
    "psField-{run:06d}-{camcol}-{field:04d}.fit"
)

_FRAME_RE = re.compile(
    r"^frame-(?P<band>[ugriz])-(?P<run>\d{6})-(?P<camcol>[1-6])-(?P<field>\d{4})"
    r"\.fits?(\.bz2|\.gz)?$"
)
_PSFIELD_RE = re.compile(
    r"^psField-(?P<run>\d{6})-(?P<camcol>[1-6])-(?P<field>\d{4})\.fits?(\.gz)?$"
)

#: CCD gain (electrons per count) by camcol (1-6) and band, from the SDSS frame
#: data model.  A tuple ``(value_before, run_limit, value_from)`` means the
#: gain changed at ``run_limit``.  psField files carry the exact per-field
#: values and take precedence when given.
GAIN = {
    1: {"u": 1.62, "g": 3.32, "r": 4.71, "i": 5.165, "z": 4.745},
    2: {"u": (1.595, 1100, 1.825), "g": 3.855, "r": 4.6, "i": (6.565, 1100, 5.195),
        "z": 5.155},
    3: {"u": 1.59, "g": 3.845, "r": 4.72, "i": 4.86, "z": 4.885},
    4: {"u": 1.6, "g": 3.995, "r": 4.76, "i": 4.885, "z": 4.775},
    5: {"u": 1.47, "g": 4.05, "r": 4.725, "i": 4.64, "z": 3.48},
    6: {"u": 2.17, "g": 4.035, "r": 4.895, "i": 4.76, "z": 4.69},
}  # fmt: skip

#: Dark variance (counts squared) by camcol and band, from the SDSS frame data
#: model; tuples as in `GAIN`.
DARK_VARIANCE = {
    1: {"u": 9.61, "g": 15.6025, "r": 1.8225, "i": 7.84, "z": 0.81},
    2: {"u": 12.6025, "g": 1.44, "r": 1.00, "i": (5.76, 1500, 6.25), "z": 1.0},
    3: {"u": 8.7025, "g": 1.3225, "r": 1.3225, "i": 4.6225, "z": 1.0},
    4: {"u": 12.6025, "g": 1.96, "r": 1.3225, "i": (6.25, 1500, 7.5625),
        "z": (9.61, 1500, 12.6025)},
    5: {"u": 9.3025, "g": 1.1025, "r": 0.81, "i": 7.84, "z": (1.8225, 1500, 2.1025)},
    6: {"u": 7.0225, "g": 1.8225, "r": 0.9025, "i": 5.0625, "z": 1.21},
}  # fmt: skip

#: Counts above which an SDSS pixel is treated as saturated when picking stars.
SATURATION_COUNTS = 30000.0


def _by_run(value, run):
    if isinstance(value, tuple):
        before, limit, after = value
        return before if run < limit else after
    return value


def gain_and_dark_variance(band, camcol, run):
    """Return the tabulated gain and dark variance of one SDSS CCD.

    Parameters
    ----------
    band : str
        One of ``ugriz``.
    camcol : int
        Camera column, 1 to 6.
    run : int
        Imaging run (a few values changed during the survey).

    Returns
    -------
    gain : float
        Electrons per count.
    dark_variance : float
        Dark variance in counts squared.
    """
    if camcol not in GAIN or band not in BANDS:
        msg = f"no SDSS CCD for band {band!r} and camcol {camcol!r}"
        raise PicassoInputError(msg)
    return (
        float(_by_run(GAIN[camcol][band], run)),
        float(_by_run(DARK_VARIANCE[camcol][band], run)),
    )


@dataclass(frozen=True)
class FrameName:
    """The parts of an SDSS frame file name."""

    band: str
    run: int
    camcol: int
    field: int

    @property
    def key(self):
        """Tuple of int: ``(run, camcol, field)``."""
        return (self.run, self.camcol, self.field)


def parse_frame_name(path):
    """Parse ``frame-{band}-{run}-{camcol}-{field}.fits[.bz2]``.

    Parameters
    ----------
    path : str or `~pathlib.Path`

    Returns
    -------
    name : `FrameName` or None
        None when the file name is not an SDSS frame name.
    """
    match = _FRAME_RE.match(Path(path).name)
    if match is None:
        return None
    return FrameName(
        match["band"], int(match["run"]), int(match["camcol"]), int(match["field"])
    )


def _open_error(path, err, what):
    """Return the `PicassoInputError` for an SDSS file that could not be read.

    Its message holds ``err``'s, so it is raised ``from None``.
    """
    if isinstance(err, PicassoInputError):
        return err
    if isinstance(err, FileNotFoundError):
        return PicassoInputError(f"SDSS {what} {path} does not exist; check the path")
    msg = (
        f"could not read the SDSS {what} {path}: {type(err).__name__}: {err}. "
        "The file is corrupt or truncated; download it again"
    )
    return PicassoInputError(msg)


def _bz2_decoder():
    """Return the name of the bzip2 decoder `_decompressed` uses."""
    try:
        import indexed_bzip2
    except ImportError:
        return "bz2 (stdlib)"
    return f"indexed_bzip2 {indexed_bzip2.__version__}"


def _bz2_decompress(raw):
    """Decompress bzip2 bytes, with ``indexed_bzip2`` when it is installed.

    ``indexed_bzip2`` decodes an SDSS frame about 1.5 times faster than the
    standard library; its output is the same bytes.  When it fails (a corrupt
    or truncated file), the standard library decodes again, so that the
    error raised, and its message, do not depend on the decoder.
    """
    try:
        import indexed_bzip2
    except ImportError:
        return bz2.decompress(raw)
    try:
        # One thread: on a small machine the cores serve other frames and
        # galaxies; two threads were not faster on two cores.
        with indexed_bzip2.open(io.BytesIO(raw), parallelization=1) as stream:
            data = stream.read()
    except (RuntimeError, ValueError, OSError, EOFError):
        data = b""
    if not data and raw:
        return bz2.decompress(raw)
    return data


def _decompressed(path):
    """Return a bzip2-compressed file as an in-memory file object, else the path.

    astropy reads ``.bz2`` files through `bz2.BZ2File`, whose backward seeks
    restart the decompression: an SDSS frame would be decompressed several
    times.  Decompressing once into memory is about five times faster.
    """
    if path.suffix == ".bz2":
        return io.BytesIO(_bz2_decompress(path.read_bytes()))
    return path


def _linear_index(positions, n):
    """Grid points around ``positions`` on ``n`` points, and the upper's weight.

    Positions beyond the grid take the edge value (IDL ``interpolate``).
    """
    pos = np.clip(np.asarray(positions, dtype=float), 0, n - 1)
    lo = np.minimum(np.floor(pos).astype(int), max(n - 2, 0))
    return lo, np.minimum(lo + 1, n - 1), pos - lo


def _interpolate_sky(allsky, xinterp, yinterp, shape):
    """Bilinear interpolation of the SDSS sky grid onto the frame's pixels.

    As in the frame data model (IDL ``interpolate(sky, xinterp, yinterp,
    /grid)``): pixel ``(row, col)`` takes the value of the grid at the
    fractional position ``(yinterp[row], xinterp[col])``; positions beyond
    the grid take the nearest edge value.  Bilinear interpolation on a grid
    is separable: rows first (on the small grid), then columns, in float32.
    """
    ny, nx = shape
    grid_ny, grid_nx = allsky.shape
    lo, hi, frac = _linear_index(yinterp[:ny], grid_ny)
    rows = allsky[lo] * (1 - frac[:, np.newaxis]) + allsky[hi] * frac[:, np.newaxis]
    rows = rows.astype(np.float32)
    lo, hi, frac = _linear_index(xinterp[:nx], grid_nx)
    frac = frac.astype(np.float32)
    return rows[:, lo] * (1 - frac) + rows[:, hi] * frac


#: Rows read beyond the squares that `read_frame`'s ``around`` asks for.
ROW_MARGIN = 2


def frame_id(path):
    """Return what identifies a frame file's content: path, size, modification time."""
    return _bz2fits.file_key(Path(path))


def _rows_around(wcs, shape, around):
    """Return the rows ``(start, stop)`` that ``around`` covers; None for all."""
    positions, size = around
    _, y = wcs.world_to_pixel(positions)
    y = np.atleast_1d(np.asarray(y, dtype=float))
    if y.size == 0 or not np.all(np.isfinite(y)):
        return None
    half = float(size) / 2 + ROW_MARGIN
    start = max(int(np.floor(y.min() - half)), 0)
    stop = min(int(np.ceil(y.max() + half)) + 1, shape[0])
    if start >= stop or (start == 0 and stop == shape[0]):
        return None
    return start, stop


def _is_calibration_vector(header, primary):
    """Return whether a header is a frame's HDU1: one calibration per column."""
    return (
        str(header.get("XTENSION", "")).strip() == "IMAGE"
        and header.get("NAXIS") == 1
        and header.get("NAXIS1") == primary.get("NAXIS1")
    )


def _frame_hdus(path, source, rows=None, wcs=None):
    """Read a frame's header, image (rows), calibration vector and sky grid.

    Returns them with ``rows`` and ``wcs`` (the frame's, if known).
    """
    with fits.open(source) as hdul:
        if len(hdul) < 3:
            msg = (
                f"{path} has {len(hdul)} HDU(s), not the image, calibration "
                "vector and sky grid of an SDSS corrected frame"
            )
            raise PicassoInputError(msg)
        header = hdul[0].header.copy()
        if rows is None:
            image = np.array(hdul[0].data, dtype=np.float32)
        else:
            image = np.array(hdul[0].section[rows[0] : rows[1]], dtype=np.float32)
        calib = np.array(hdul[1].data, dtype=np.float64)
        sky_table = hdul[2].data
        allsky = np.array(sky_table["ALLSKY"][0], dtype=np.float64)
        xinterp = np.array(sky_table["XINTERP"][0], dtype=np.float64)
        yinterp = np.array(sky_table["YINTERP"][0], dtype=np.float64)
    return header, image, rows, calib, allsky, xinterp, yinterp, wcs


def _rows_of(header, around):
    """Return the rows of a frame that ``around`` covers, and the frame's WCS."""
    if header.get("NAXIS") != 2:
        return None, None
    shape = (int(header["NAXIS2"]), int(header["NAXIS1"]))
    wcs = read_wcs(header, "an SDSS frame")
    return _rows_around(wcs, shape, around), wcs


#: What a frame read in part can fail with: it is then read whole, which
#: gives the same pixels or, for a damaged file, the usual error.
_PARTIAL_ERRORS = (
    _bz2fits.Unsupported,
    PicassoInputError,
    OSError,
    EOFError,
    ValueError,
    RuntimeError,
    KeyError,
    IndexError,
    TypeError,
)


def _read_in_part(path, around):
    """`_frame_hdus` of the rows ``around`` covers; None to read the whole frame.

    Uncompressed frames are read through astropy's memory map;
    bzip2-compressed ones through `~picasso_astro._bz2fits.CompressedFITS`
    (with ``indexed_bzip2``), which decodes only the blocks holding the
    header, those rows and the small HDUs at the end.
    """
    try:
        if path.suffix in (".fits", ".fit"):
            rows, wcs = _rows_of(fits.getheader(path, 0), around)
            return None if rows is None else _frame_hdus(path, path, rows, wcs)
        if path.suffix != ".bz2" or not _bz2fits.available():
            return None
        with _bz2fits.CompressedFITS(
            path, first_extension=_is_calibration_vector
        ) as view:
            rows, wcs = _rows_of(view.primary_header(), around)
            return None if rows is None else _frame_hdus(path, view, rows, wcs)
    except _PARTIAL_ERRORS:
        return None


def read_frame(path, *, psfield=None, around=None):
    """Read one SDSS corrected frame into a `~picasso_astro.images.BandImage`.

    The image (HDU0) is in nanomaggies.  The noise image is rebuilt as the
    frame data model describes: the calibration vector (HDU1, nanomaggies per
    count for each column) and the sky grid (HDU2, counts, bilinearly
    interpolated to every pixel) give the counts ``dn = image / calib + sky``,
    whose error is ``sqrt(dn / gain + dark_variance)`` counts, that is
    ``calib * sqrt(dn / gain + dark_variance)`` nanomaggies.

    Parameters
    ----------
    path : str or `~pathlib.Path`
        ``frame-{band}-{run}-{camcol}-{field}.fits[.bz2]``.
    psfield : str, `~pathlib.Path` or `PSField`, optional
        The field's psField file: its gain and dark variance replace the
        tabulated ones, and the band's PSF at the frame centre is attached.
    around : tuple, optional
        ``(positions, size)``: sky positions (`~astropy.coordinates.SkyCoord`)
        and the side in pixels of the squares a caller will cut around them.
        Only the frame rows those squares cover (and `ROW_MARGIN` more each
        way) are read, where the file allows it: uncompressed, or
        bzip2-compressed with ``indexed_bzip2`` installed (only the
        compressed blocks that hold those rows, the header and the small HDUs
        are decoded, so damage elsewhere in the file goes unnoticed).  The
        image then holds those rows, with the WCS of its own pixels;
        ``meta["frame_rows"]`` gives them, ``meta["frame_shape"]`` and
        ``meta["frame_wcs"]`` the whole frame's shape and WCS.  Otherwise, and
        when the squares cover every row, the whole frame is read.  Its
        pixels, noise and sky are those of the whole frame's rows.

    Returns
    -------
    image : `~picasso_astro.images.BandImage`
        With ``meta`` holding the file, band, run, camcol, field, gain, dark
        variance, ``calib`` (1D, nanomaggies per count), ``sky`` (2D,
        nanomaggies), the header's ``NMGY`` and ``frame_id`` (`frame_id`).

    Raises
    ------
    PicassoInputError
        If the file cannot be read (corrupt or truncated) or lacks the HDUs
        of a corrected frame.
    """
    path = Path(path)
    parts = _read_in_part(path, around) if around is not None else None
    if parts is None:
        try:
            parts = _frame_hdus(path, _decompressed(path))
        except (OSError, EOFError, ValueError, KeyError, IndexError, TypeError) as err:
            raise _open_error(path, err, "frame") from None
    header, image, rows, calib, allsky, xinterp, yinterp, frame_wcs = parts
    if image.ndim != 2 or calib.shape != (image.shape[1],):
        msg = (
            f"{path}: the calibration vector has shape {calib.shape} but the "
            f"image has shape {image.shape}; this is not an SDSS corrected frame"
        )
        raise PicassoInputError(msg)
    frame_shape = image.shape
    if rows is not None:
        frame_shape = (int(header["NAXIS2"]), int(header["NAXIS1"]))

    name = parse_frame_name(path)
    band = header.get("FILTER", name.band if name else "").strip()
    run = int(header.get("RUN", name.run if name else -1))
    camcol = int(header.get("CAMCOL", name.camcol if name else -1))
    field_no = int(header.get("FRAME", name.field if name else -1))
    if band not in BANDS:
        msg = f"{path}: no SDSS band in the FILTER card or the file name"
        raise PicassoInputError(msg)

    if isinstance(psfield, str | Path):
        psfield = read_psfield(psfield)
    if psfield is not None:
        gain, dark_variance = psfield.gain[band], psfield.dark_variance[band]
        noise_source = "psField"
    else:
        gain, dark_variance = gain_and_dark_variance(band, camcol, run)
        noise_source = "SDSS frame data model table"

    # In float32 and in place: a whole frame is 3 million pixels.  Every
    # row's values depend on that row only, so that a frame read in part
    # has the whole frame's values in its rows.
    calib32 = calib.astype(np.float32)
    first = 0 if rows is None else rows[0]
    sky = _interpolate_sky(allsky, xinterp, yinterp[first:], image.shape)
    noise = image / calib32 + sky
    np.clip(noise, 0, None, out=noise)
    noise /= np.float32(gain)
    noise += np.float32(dark_variance)
    np.sqrt(noise, out=noise)
    noise *= calib32
    sky *= calib32

    if frame_wcs is None:
        frame_wcs = read_wcs(header, str(path))
    meta = {
        "file": str(path),
        "frame_id": frame_id(path),
        "band": band,
        "run": run,
        "camcol": camcol,
        "field": field_no,
        "gain": gain,
        "dark_variance": dark_variance,
        "noise_from": noise_source,
        "nmgy_per_count": float(header.get("NMGY", np.nan)),
        "calib": calib.astype(np.float32),
        "sky": sky,
        # Pixels whose raw counts (sky included) reach this are saturated.
        "saturation_counts": SATURATION_COUNTS,
        # The sky grid is defined for a full 2048x1489 frame; a cut-down frame
        # is assumed to start at the frame's first row and column.
        "sky_grid_shape": allsky.shape,
        "full_frame": (len(yinterp), len(xinterp)) == frame_shape,
    }
    wcs = frame_wcs
    if rows is not None:
        wcs = frame_wcs.slice((slice(*rows), slice(None)))
        meta.update(frame_rows=rows, frame_shape=frame_shape, frame_wcs=frame_wcs)
    psf = psf_fwhm = None
    if psfield is not None:
        ny, nx = frame_shape
        psf = psfield.psf(band, (ny - 1) / 2, (nx - 1) / 2)
        psf_fwhm = psfield.fwhm(band, (ny - 1) / 2, (nx - 1) / 2)
        meta["psf_from"] = "psField"
        meta["psfield"] = psfield.path
    return BandImage(
        band,
        image,
        wcs=wcs,
        noise=noise,
        mask=~np.isfinite(image),
        psf=psf,
        psf_fwhm=psf_fwhm,
        meta=meta,
    )


class PSField:
    """The PSF and CCD parameters of one SDSS field, from its psField file.

    Use `read_psfield` to make one.

    Attributes
    ----------
    path : str
    gain, dark_variance, psf_width : dict of str to float
        Per band: electrons per count, counts squared, and photo's effective
        PSF width in arcsec.
    """

    def __init__(self, path, components, gain, dark_variance, psf_width):
        self.path = str(path)
        self._components = components
        self.gain = gain
        self.dark_variance = dark_variance
        self.psf_width = psf_width

    def psf(self, band, row, col, *, size=None):
        """Reconstruct the PSF of one band at one frame position.

        Parameters
        ----------
        band : str
            One of ``ugriz``.
        row, col : float
            Position in the frame, 0-based (row = y, column = x).
        size : int, optional
            Odd output size; by default the eigenimage size (51).

        Returns
        -------
        psf : 2D `~numpy.ndarray`
            Centred on the central pixel, unit sum.
        """
        if band not in self._components:
            msg = f"band must be one of {', '.join(BANDS)}, not {band!r}"
            raise PicassoInputError(msg)
        psf = _psf.kl_psf(self._components[band], row, col)
        psf = _psf.normalize_psf(psf)
        if size is not None:
            psf = _psf.resize_odd(psf, size)
        return psf

    def fwhm(self, band, row, col):
        """Return the FWHM in arcsec of the band's PSF at a frame position.

        Measured with the same core Gaussian fit that is used on stars.
        """
        fwhm_pix, _ = _psf.psf_fwhm(self.psf(band, row, col))
        return float(fwhm_pix * PIXEL_SCALE)


def read_psfield(path):
    """Read an SDSS psField file.

    HDUs 1-5 hold, for u, g, r, i and z, the KL eigenimages of the PSF
    (``RROWS``, each ``RNROW`` x ``RNCOL``) and their polynomial coefficients
    in row and column (``C``, ``nrow_b``, ``ncol_b``); HDU6 holds per-band
    field parameters, among them ``gain`` and ``dark_variance``.

    Parameters
    ----------
    path : str or `~pathlib.Path`

    Returns
    -------
    psfield : `PSField`

    Raises
    ------
    PicassoInputError
        If the file cannot be read or is not a psField.
    """
    path = Path(path)
    components = {}
    try:
        with fits.open(path) as hdul:
            if len(hdul) < 7:
                msg = f"{path} has {len(hdul)} HDUs; a psField has at least 7"
                raise PicassoInputError(msg)
            for index, band in enumerate(BANDS, start=1):
                table = hdul[index].data
                names = {n.lower(): n for n in table.columns.names}
                comps = []
                for row in table:
                    nrow, ncol = int(row[names["rnrow"]]), int(row[names["rncol"]])
                    image = np.asarray(row[names["rrows"]], dtype=float)
                    comps.append(
                        {
                            "image": image.reshape(nrow, ncol),
                            "c": np.asarray(row[names["c"]], dtype=float),
                            "nrow_b": int(row[names["nrow_b"]]),
                            "ncol_b": int(row[names["ncol_b"]]),
                        }
                    )
                components[band] = comps
            params = hdul[6].data
            names = {n.lower(): n for n in params.columns.names}
            gain = np.ravel(params[names["gain"]][0])
            dark = np.ravel(params[names["dark_variance"]][0])
            width = np.ravel(params[names["psf_width"]][0])
    except (OSError, EOFError, ValueError, KeyError, IndexError, TypeError) as err:
        raise _open_error(path, err, "psField") from None
    return PSField(
        path,
        components,
        gain=dict(zip(BANDS, map(float, gain), strict=True)),
        dark_variance=dict(zip(BANDS, map(float, dark), strict=True)),
        psf_width=dict(zip(BANDS, map(float, width), strict=True)),
    )


@dataclass
class SDSSField:
    """The frames of one SDSS field (run, camcol, field), read lazily.

    Each frame is decompressed and read once, on first use, and kept: every
    galaxy in the field reuses it.  Asked for the rows around some positions
    only (``around``), it reads only those when that gives the same pixels
    (see `SDSSField.images`).

    Parameters
    ----------
    run, camcol, field : int
    paths : dict of str to `~pathlib.Path`
        Frame file per band.
    psfield : str, `~pathlib.Path` or None
        The field's psField file, if any.

    Attributes
    ----------
    cache : dict
        What later steps derive from the frames once per field (such as
        `~picasso_astro.preprocess.field_backgrounds`), kept with the frames
        until `clear` and never sent to other processes.
    """

    run: int
    camcol: int
    field: int
    paths: dict = field(default_factory=dict)
    psfield: Path | None = None
    _images: dict = field(default_factory=dict, repr=False)
    cache: dict = field(default_factory=dict, repr=False)
    _psfield: PSField | None = field(default=None, repr=False)
    _wcs: WCS | None = field(default=None, repr=False)
    _shape: tuple | None = field(default=None, repr=False)

    def __getstate__(self):
        # Sent to another process (a Dask worker): the paths and geometry,
        # never the decompressed images nor what was derived from them.
        return dict(self.__dict__, _images={}, cache={})

    @property
    def key(self):
        """Tuple of int: ``(run, camcol, field)``."""
        return (self.run, self.camcol, self.field)

    @property
    def name(self):
        """str: ``run-camcol-field`` as in SDSS file names."""
        return f"{self.run:06d}-{self.camcol}-{self.field:04d}"

    @property
    def bands(self):
        """Tuple of str: the bands present, in `BANDS` order."""
        return tuple(band for band in BANDS if band in self.paths)

    def psfield_data(self):
        """Return the `PSField` of this field, or None (read once)."""
        if self._psfield is None and self.psfield is not None:
            self._psfield = read_psfield(self.psfield)
        return self._psfield

    def image(self, band, *, around=None):
        """Return the band's `~picasso_astro.images.BandImage` (read once).

        Parameters
        ----------
        band : str
        around : tuple, optional
            ``(positions, size)`` as for `read_frame`: the rows the squares
            of side ``size`` around ``positions`` cover are enough.  A frame
            already read is reused when it holds them.
        """
        if band not in self.paths:
            msg = (
                f"field {self.name} has no {band}-band frame; "
                f"found {', '.join(self.bands) or 'none'}"
            )
            raise PicassoInputError(msg)
        cached = self._images.get(band)
        if cached is not None and _holds(cached, around):
            return cached
        if around is not None and not self._rows_suffice(band):
            around = None
        self._images[band] = read_frame(
            self.paths[band], psfield=self.psfield_data(), around=around
        )
        return self._images[band]

    def adopt_image(self, band, image):
        """Use the band's whole frame as read elsewhere (by another process).

        Parameters
        ----------
        band : str
        image : `~picasso_astro.images.BandImage`
            What `image` returns for the band, read whole.
        """
        if image.meta.get("file") != str(self.paths.get(band)):
            msg = f"{image.meta.get('file')} is not the {band} frame of {self.name}"
            raise ValueError(msg)
        if image.meta.get("frame_rows") is not None:
            msg = f"{image.meta['file']}: only some rows were read, not the frame"
            raise ValueError(msg)
        self._images[band] = image

    def _rows_suffice(self, band):
        """Return whether some rows of the band's frame give what the whole does.

        Everything but a PSF measured on the frame's stars is local: they
        do when the PSF comes from the psField, or from stars measured
        earlier on the whole frame (kept per frame file by
        `~picasso_astro._psf.psf_for_band`).
        """
        if self.psfield is not None:
            return True
        return _psf.star_psf_known(frame_id(self.paths[band]))

    def images(self, *, around=None):
        """Return all bands as a dict of `~picasso_astro.images.BandImage`.

        Parameters
        ----------
        around : tuple, optional
            ``(positions, size)``: `~astropy.coordinates.SkyCoord` positions
            and the side in pixels of the squares cut around them (for
            `~picasso_astro.preprocess.prepare_target`, see
            `~picasso_astro.preprocess.frame_read_size`).  Each frame is then
            read in part, the rows those squares cover only (`read_frame`),
            where that gives the pixels of the whole frame: when the field
            has a psField, or the PSF of each band was already measured on
            the stars of its whole frame in this process.  Otherwise whole.
        """
        missing = [band for band in BANDS if band not in self.paths]
        if missing:
            msg = (
                f"field {self.name} lacks the {', '.join(missing)}-band frame(s); "
                "all five of ugriz are needed"
            )
            raise PicassoInputError(msg)
        return {band: self.image(band, around=around) for band in BANDS}

    def geometry(self):
        """Return the r-band frame's WCS and shape, from its header alone.

        When the r-band frame cannot be read, another band's header stands in
        (the five frames of a field cover nearly the same sky), so that the
        targets in the field are found and fail on the damaged frame, by
        name, rather than seem to lie outside every frame.
        """
        # From headers only: the first compressed block of a frame whose image
        # is not read yet.
        if self._wcs is None:
            bands = sorted(self.bands, key=lambda band: band != "r")
            error = None
            for band in bands:
                if band in self._images:
                    image = self._images[band]
                    self._wcs = image.meta.get("frame_wcs", image.wcs)
                    self._shape = image.meta.get("frame_shape", image.shape)
                    break
                path = self.paths[band]
                try:
                    header = _bz2fits.read_header(path)
                    wcs = read_wcs(header, str(path))
                except (OSError, EOFError, ValueError, RuntimeError) as err:
                    error = error or _open_error(path, err, "frame")
                    continue
                self._wcs, self._shape = wcs, (header["NAXIS2"], header["NAXIS1"])
                break
            if self._wcs is None:
                raise error
        return self._wcs, self._shape

    def clear(self):
        """Forget the decompressed images and `cache` (to free memory)."""
        self._images.clear()
        self.cache.clear()


def _holds(image, around):
    """Return whether a frame (whole or in part) holds the rows ``around`` needs."""
    rows = image.meta.get("frame_rows")
    if rows is None:
        return True
    if around is None:
        return False
    needed = _rows_around(image.meta["frame_wcs"], image.meta["frame_shape"], around)
    if needed is None:
        return False
    return rows[0] <= needed[0] and needed[1] <= rows[1]


def find_frames(source):
    """Group SDSS frame files by field.

    Parameters
    ----------
    source : str, `~pathlib.Path` or iterable of them
        Directories (searched recursively for ``frame-*.fits*`` and
        ``psField-*.fit*``) and files.

    Returns
    -------
    fields : dict of tuple to `SDSSField`
        Keyed by ``(run, camcol, field)``, sorted.

    Raises
    ------
    PicassoInputError
        If no SDSS frame is found or a band appears twice for one field.
    """
    if isinstance(source, str | Path):
        source = [source]
    files = []
    for item in map(Path, source):
        if item.is_dir():
            files += sorted(p for p in item.rglob("*") if p.is_file())
        elif item.is_file():
            files.append(item)
        else:
            msg = f"{item} is neither a directory nor a file; check the path"
            raise PicassoInputError(msg)
    fields = {}
    psfields = {}
    for path in files:
        name = parse_frame_name(path)
        if name is None:
            match = _PSFIELD_RE.match(path.name)
            if match:
                key = (int(match["run"]), int(match["camcol"]), int(match["field"]))
                psfields[key] = path
            continue
        entry = fields.setdefault(name.key, SDSSField(*name.key))
        if name.band in entry.paths:
            msg = (
                f"two {name.band}-band frames for field {entry.name}: "
                f"{entry.paths[name.band]} and {path}; keep one"
            )
            raise PicassoInputError(msg)
        entry.paths[name.band] = path
    if not fields:
        msg = (
            "no SDSS frame files (frame-{band}-{run}-{camcol}-{field}.fits[.bz2]) "
            f"found in {source}"
        )
        raise PicassoInputError(msg)
    for key, path in psfields.items():
        if key in fields:
            fields[key].psfield = path
    return dict(sorted(fields.items()))


def _edge_distance(fld, coords):
    """Pixels from each position to the nearest edge of the r frame (< 0: off)."""
    wcs, (ny, nx) = fld.geometry()
    x, y = wcs.world_to_pixel(coords)
    # NaN (a position the projection cannot reach) compares as off the frame.
    edge = np.minimum.reduce([x + 0.5, nx - 0.5 - x, y + 0.5, ny - 0.5 - y])
    return np.where(np.isnan(edge), -np.inf, edge)


def best_field_index(coords, fields):
    """Return, for each position, the index of the field that best contains it.

    Parameters
    ----------
    coords : `~astropy.coordinates.SkyCoord`
        Array of positions.
    fields : list of `SDSSField`

    Returns
    -------
    index : int `~numpy.ndarray`
        Into ``fields``; the field where the position lies farthest from an
        edge (the first such on ties), or -1 where no frame holds it.
    """
    best = np.full(len(coords), -1)
    best_edge = np.full(len(coords), -np.inf)
    for number, fld in enumerate(fields):
        edge = _edge_distance(fld, coords)
        better = (edge >= 0) & (edge > best_edge)
        best[better] = number
        best_edge[better] = edge[better]
    return best


def download_frames(
    run, camcol, field, *, bands="ugriz", directory=None, psfield=False
):
    """Fetch a field's corrected frames from the SDSS Science Archive Server.

    Files go through astropy's download cache (`~astropy.utils.data.download_file`
    with ``cache=True``), so each is fetched once; they are then linked into
    ``directory`` under their SDSS names, ready for `find_frames` and
    `~picasso_astro.predict`.

    Parameters
    ----------
    run, camcol, field : int
        The SDSS field.
    bands : str
        Bands to fetch.
    directory : str or `~pathlib.Path`, optional
        Where the frames appear (a new temporary directory by default).
    psfield : bool
        Fetch the field's psField file too (`SAS_PSFIELD_URL`, 0.4 to 0.8 MB):
        the PSF of every band at the galaxy then comes from it, exact and
        without measuring stars, and only the frame rows around each galaxy
        need to be decoded (`SDSSField.images`).

    Returns
    -------
    directory : `~pathlib.Path`

    Raises
    ------
    PicassoInputError
        If a file cannot be fetched.
    """
    import tempfile

    directory = Path(directory) if directory is not None else Path(tempfile.mkdtemp())
    directory.mkdir(parents=True, exist_ok=True)
    urls = [
        SAS_FRAME_URL.format(band=band, run=run, camcol=camcol, field=field)
        for band in bands
    ]
    if psfield:
        urls.append(SAS_PSFIELD_URL.format(run=run, camcol=camcol, field=field))
    for url in urls:
        _fetch_into(url, directory)
    return directory


def _fetch_into(url, directory):
    """Fetch ``url`` through astropy's cache and link it into ``directory``."""
    import shutil
    import urllib.error

    from astropy.utils.data import download_file

    try:
        cached = download_file(url, cache=True)
    except (urllib.error.URLError, OSError) as err:
        if isinstance(err, urllib.error.HTTPError):
            err.close()  # the server's answer (a 404) holds a socket
        msg = (
            f"could not fetch {url} ({err}); check the network, or put the "
            "frame (and psField) files in a directory and give that instead"
        )
        raise PicassoInputError(msg) from None
    target = directory / url.rsplit("/", 1)[1]
    if not target.exists():
        try:
            target.symlink_to(cached)
        except OSError:
            shutil.copyfile(cached, target)
