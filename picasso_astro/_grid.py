"""Pixel grids: cutouts around sky positions, alignment of bands, cutout sizes."""

import astropy.units as u
import numpy as np
from astropy.nddata import Cutout2D, NoOverlapError
from astropy.wcs.utils import (
    pixel_to_pixel,
    proj_plane_pixel_area,
    skycoord_to_pixel,
)

from . import _resample
from .exceptions import PicassoInputError
from .images import PIXEL_SCALE

__all__ = [
    "align_bands",
    "check_pixel_scale",
    "cutout_bands",
    "off_image",
    "on_image",
    "resolve_cutout_size",
]

#: The ``meta`` key of a cutout's off-frame pixels.
OFF_IMAGE = "off_image"

#: ``meta`` keys of a frame that its cutouts do not inherit: the frame file,
#: and the rows read of it (`~picasso_astro.sdss.read_frame`).
FRAME_KEYS = ("frame_id", "frame_rows", "frame_shape", "frame_wcs")

#: Extra pixels cut on each side of the bands other than the reference before
#: they are put on its grid (`cutout_bands`).
BAND_MARGIN = 8

#: Bands overlapping the reference band by less than this fraction are refused.
MIN_OVERLAP = 0.5


def _same_grid(image, reference):
    if image.shape != reference.shape:
        return False
    if image.wcs is None or reference.wcs is None:
        return image.wcs is None and reference.wcs is None
    ny, nx = reference.shape
    corners_x = np.array([0, nx - 1, 0, nx - 1, (nx - 1) / 2])
    corners_y = np.array([0, 0, ny - 1, ny - 1, (ny - 1) / 2])
    x, y = pixel_to_pixel(image.wcs, reference.wcs, corners_x, corners_y)
    return bool(np.all(np.hypot(x - corners_x, y - corners_y) < 1e-3))


def _overlap_fraction(image, reference):
    """Fraction of the reference image's sky that ``image`` covers."""
    ref_ny, ref_nx = reference.shape
    yy, xx = np.meshgrid(np.linspace(0, ref_ny - 1, 17), np.linspace(0, ref_nx - 1, 17))
    x, y = pixel_to_pixel(reference.wcs, image.wcs, xx.ravel(), yy.ravel())
    ny, nx = image.shape
    inside = (x > -0.5) & (x < nx - 0.5) & (y > -0.5) & (y < ny - 0.5)
    return float(np.mean(inside))


def _covers(coords, shape):
    """Return whether every mapped position lies on an image of ``shape``."""
    ny, nx = shape
    return bool(
        np.all(np.isfinite(coords))
        and coords[0].min() >= -0.5
        and coords[0].max() <= ny - 0.5
        and coords[1].min() >= -0.5
        and coords[1].max() <= nx - 0.5
    )


def align_bands(images, *, reference_band="r"):
    """Put every band on the pixel grid of the reference band.

    Bands already on the reference grid are returned unchanged; the others are
    reprojected as `reproject.reproject_interp` does with bilinear
    interpolation (one pixel mapping per band serves its data, noise and
    mask), and pixels outside their footprint are masked.

    Parameters
    ----------
    images : dict of str to `~picasso_astro.images.BandImage`
        One image per band.
    reference_band : str
        The band whose grid the others are put on.

    Returns
    -------
    aligned : dict of str to `~picasso_astro.images.BandImage`

    Raises
    ------
    PicassoInputError
        If a band lacks a WCS while the grids differ, or covers too little of the
        reference band's sky.
    """
    reference = images[reference_band]
    aligned = {}
    for band, image in images.items():
        if band == reference_band or _same_grid(image, reference):
            aligned[band] = image
            continue
        if image.wcs is None or reference.wcs is None:
            msg = (
                f"the {band} and {reference_band} images differ in shape "
                f"({image.shape} vs {reference.shape}) and at least one has no WCS, "
                "so they cannot be aligned; give cutouts with celestial WCS headers"
            )
            raise PicassoInputError(msg)
        # The overlap is checked where the band does not cover the grid whole.
        overlap = 1.0
        try:
            coords = _resample.pixel_map(reference.wcs, image.wcs, reference.shape)
        except Exception:  # any trouble: the overlap check's message first
            coords = None
        if coords is None or not _covers(coords, image.shape):
            overlap = _overlap_fraction(image, reference)
        if overlap < MIN_OVERLAP:
            msg = (
                f"the {band}-band image covers only {overlap:.0%} of the "
                f"{reference_band}-band image's sky: the bands are not cutouts "
                "of the same galaxy; check that the files belong together"
            )
            raise PicassoInputError(msg)
        if coords is None:
            coords = _resample.pixel_map(reference.wcs, image.wcs, reference.shape)
        # Planes with nothing to say (no bad pixel, nothing off the image)
        # are not resampled: they would give nothing but NaN off the grid.
        bad = image.bad_pixels()
        off_in = off_image(image)
        planes = {"data": np.where(bad, 0.0, image.data)}
        if bad.any():
            planes["bad"] = bad.astype(np.float32)
        if off_in.any():
            planes["off"] = off_in.astype(np.float32)
        if image.noise is not None:
            planes["noise"] = image.noise
        resampled = _resample.resample(list(planes.values()), coords)
        out = dict(zip(planes, resampled, strict=True))
        data = out["data"]
        outside = ~np.isfinite(data)
        mask = outside | (out["bad"] > 0) if "bad" in out else outside
        noise = out.get("noise")
        meta = dict(image.meta, reprojected_to=reference_band)
        meta[OFF_IMAGE] = outside | (out["off"] > 0) if "off" in out else outside
        aligned[band] = image.replace(
            data=np.where(mask, np.nan, data),
            wcs=reference.wcs,
            noise=noise,
            mask=mask,
            meta=meta,
        )
    return aligned


def resolve_cutout_size(size, *, half_light_radius=None, pixel_scale=PIXEL_SCALE):
    """Turn a cutout-size convention into a number of pixels.

    Parameters
    ----------
    size : int, `~astropy.units.Quantity` or dict
        Pixels (int), an angle (Quantity), or a model config's ``cutout``:
        ``{"kind": "fixed", "size": 256}``, or ``{"kind": "half_light",
        "factor": 10, "min_size": 64}`` (the cutout spans ``factor``
        half-light radii of the galaxy, and at least ``min_size`` pixels).
    half_light_radius : float or `~astropy.units.Quantity`, optional
        The galaxy's half-light radius (arcsec if a float); needed for the
        ``half_light`` convention.
    pixel_scale : float
        Arcsec per pixel.

    Returns
    -------
    npix : int
    """
    if isinstance(size, dict):
        kind = size.get("kind")
        if kind == "fixed":
            return resolve_cutout_size(int(size["size"]))
        if kind == "half_light":
            radius = (
                np.nan
                if half_light_radius is None
                else u.Quantity(half_light_radius, u.arcsec).to_value(u.arcsec)
            )
            if not np.isfinite(radius) or radius <= 0:
                msg = (
                    "the model's cutouts span a multiple of the galaxy's "
                    "half-light radius: give each target's half-light radius "
                    "(e.g. a 'petroR50_r' column in arcsec)"
                )
                raise PicassoInputError(msg)
            npix = int(np.ceil(float(size["factor"]) * radius / pixel_scale))
            return resolve_cutout_size(max(npix, int(size.get("min_size", 16))))
        msg = (
            f"unknown cutout-size convention {size!r}; kind is 'fixed' or 'half_light'"
        )
        raise PicassoInputError(msg)
    if hasattr(size, "unit"):
        size = int(np.rint(size.to_value(u.arcsec) / pixel_scale))
    npix = int(size)
    if npix < 8:
        msg = f"cutout size must be at least 8 pixels, not {size!r}"
        raise PicassoInputError(msg)
    return npix


def _window_position(image, position):
    """Pixel position in a frame read in part, as the whole frame gives it.

    Cutout2D turns a sky position into pixels with the image's WCS; on some
    rows of a frame (``meta["frame_rows"]``, `~picasso_astro.sdss.read_frame`)
    the whole frame's WCS and the first row give the very same numbers, so
    that the cutout is the whole frame's, bit for bit.
    """
    first = image.meta["frame_rows"][0]
    x, y = skycoord_to_pixel(position, image.meta["frame_wcs"], mode="all")
    return (x, y - first)


def _check_window(image, data):
    """Refuse a cutout that reaches rows of the frame that were not read."""
    first, stop = image.meta["frame_rows"]
    rows = image.meta["frame_shape"][0]
    below = data.slices_cutout[0].start > 0 and first > 0
    above = data.slices_cutout[0].stop < data.shape[0] and stop < rows
    if below or above:
        msg = (
            f"{image.meta.get('file', 'the frame')}: the cutout needs frame rows "
            f"outside the rows {first} to {stop} that were read; read more rows"
        )
        raise ValueError(msg)


def _cut(image, position, size, *, meta_extra=None, background=None):
    """Cutout2D of every plane of a BandImage; outside the frame is masked.

    ``background``, an array on the image's grid, is cut as the data are and
    subtracted from them.
    """
    window = image.meta.get("frame_rows") is not None
    data = Cutout2D(
        image.data,
        _window_position(image, position) if window else position,
        size,
        wcs=image.wcs,
        mode="partial",
        fill_value=np.nan,
        copy=True,
    )
    if window:
        _check_window(image, data)
    slices = data.slices_original
    cut_slices = data.slices_cutout

    def plane(array, fill):
        out = np.full(data.shape, fill, dtype=array.dtype)
        out[cut_slices] = array[slices]
        return out

    outside = plane(np.zeros(image.shape, dtype=bool), True)
    mask = outside.copy()
    if image.mask is not None:
        mask |= plane(image.mask, True)
    noise = plane(image.noise, np.nan) if image.noise is not None else None
    if background is not None:
        data.data -= plane(np.asarray(background, np.float32), np.nan)
    meta = {
        k: v
        for k, v in image.meta.items()
        if not isinstance(v, np.ndarray) and k not in FRAME_KEYS
    }
    meta[OFF_IMAGE] = outside
    # The cutout's own corner in the frame (off the frame for partial cutouts).
    corner = np.subtract(data.origin_original, data.origin_cutout)
    if window:
        corner[1] += image.meta["frame_rows"][0]
    meta["cutout_origin"] = tuple(int(v) for v in corner)
    meta.update(meta_extra or {})
    cut = image.replace(data=data.data, wcs=data.wcs, noise=noise, mask=mask, meta=meta)
    return cut, data


def cutout_bands(
    images,
    position,
    size,
    *,
    reference_band="r",
    margin=BAND_MARGIN,
    backgrounds=None,
):
    """Cut all bands around a position and put them on the reference band's grid.

    The reference band is cut with `~astropy.nddata.Cutout2D` in
    ``mode="partial"``: a target near a frame edge keeps its place at the
    centre of the cutout, and the part outside the frame is NaN and masked
    (never a shifted cutout).  The other bands are cut a little larger and
    reprojected onto that grid (`align_bands`).

    Parameters
    ----------
    images : dict of str to `~picasso_astro.images.BandImage`
        Whole frames (or any images with celestial WCS).
    position : `~astropy.coordinates.SkyCoord`
    size : int
        Cutout size in pixels (square).
    reference_band : str
    margin : int
        Extra pixels cut around the non-reference bands before reprojection.
    backgrounds : dict of str to 2D `~numpy.ndarray`, optional
        A background per band on its image's grid (a whole frame's,
        `~picasso_astro.preprocess.field_backgrounds`): cut with the data and
        subtracted from them before they are put on the reference grid.

    Returns
    -------
    cutouts : dict of str to `~picasso_astro.images.BandImage`
        On one grid; ``meta["cutout_origin"]`` is the reference cutout's
        lower-left pixel in its frame.
    """
    reference = images[reference_band]
    if reference.wcs is None:
        msg = "the reference band has no WCS: cutouts around sky positions need one"
        raise PicassoInputError(msg)
    cuts = {}
    backgrounds = backgrounds or {}
    try:
        ref_cut, _ = _cut(
            reference, position, size, background=backgrounds.get(reference_band)
        )
    except NoOverlapError:
        ref_cut = None
    if ref_cut is None or ref_cut.mask.all():
        msg = (
            f"position ({position.ra.deg:.5f}, {position.dec.deg:+.5f}) is not on "
            f"the {reference_band}-band image"
        )
        raise PicassoInputError(msg)
    for band, image in images.items():
        if band == reference_band:
            cuts[band] = ref_cut
        else:
            try:
                cuts[band], _ = _cut(
                    image,
                    position,
                    size + 2 * margin,
                    background=backgrounds.get(band),
                )
            except NoOverlapError:
                msg = (
                    f"the {band}-band image does not cover position "
                    f"({position.ra.deg:.5f}, {position.dec.deg:+.5f}), which the "
                    f"{reference_band}-band image holds: the band's file belongs to "
                    "another field; check the frames"
                )
                raise PicassoInputError(msg) from None
    return align_bands(cuts, reference_band=reference_band)


#: Largest relative difference between an image's pixel scale and a model's.
PIXEL_SCALE_TOLERANCE = 0.03


def check_pixel_scale(image, expected, *, name):
    """Refuse an image whose pixels are not the size a model was trained on.

    Parameters
    ----------
    image : `~picasso_astro.images.BandImage`
    expected : float
        Arcsec per pixel of the model's training images.
    name : str
        The galaxy, for the message.

    Raises
    ------
    PicassoInputError
        When the WCS's pixel scale differs by more than 3 %.
    """
    if image.wcs is None or not image.wcs.has_celestial:
        return
    scale = float(np.sqrt(proj_plane_pixel_area(image.wcs.celestial))) * 3600
    if abs(scale / expected - 1) > PIXEL_SCALE_TOLERANCE:
        msg = (
            f"{name}: the images have {scale:.4g} arcsec pixels but the model was "
            f"trained on {expected:.4g} arcsec pixels; resample them onto a "
            f"{expected:.4g} arcsec grid first (e.g. reproject.reproject_interp "
            "onto a WCS with that scale)"
        )
        raise PicassoInputError(msg)


def off_image(image):
    """Return where an image has no data because it lies off its frame.

    Cutouts record it in ``meta["off_image"]`` (`cutout_bands`, `align_bands`);
    an image without that record lies wholly on its frame.
    """
    off = image.meta.get(OFF_IMAGE)
    return np.zeros(image.shape, bool) if off is None else np.asarray(off, bool)


def on_image(image, coord):
    ny, nx = image.shape
    x, y = image.wcs.world_to_pixel(coord)
    return (x >= -0.5) & (x <= nx - 0.5) & (y >= -0.5) & (y <= ny - 0.5)
