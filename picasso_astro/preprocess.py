"""From per-band images to the model's input: the one per-galaxy path.

`prepare_target` prepares every galaxy, whether it comes from SDSS frames,
five-band cutouts or the mock generator: bands on one pixel grid, residual
background removed, PSFs matched, stars and neighbours masked, each step
switched by `~picasso_astro.preprocess.PreparationOptions` (a model records the
options it was trained with). `stack_bands` and `to_model_input` then give the
network's input. The numerics live in private modules: ``_grid`` (cutouts and
alignment), ``_sources`` (detection, background, masks) and ``_psf``.
"""

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from astropy.coordinates import SkyCoord
from astropy.stats import mad_std
from astropy.wcs import WCS

from ._context import FrameContext
from ._grid import (
    BAND_MARGIN,
    OFF_IMAGE,
    align_bands,
    cutout_bands,
    off_image,
    on_image,
    resolve_cutout_size,
)
from ._memory import check_image_memory
from ._options import PreparationOptions
from ._psf import assumed_psf, estimate_psf, match_psfs, psf_for_band
from ._sources import (
    classify_sources,
    estimate_background,
    mask_sources,
    subtract_background,
)
from ._warnings_target import target_warnings
from .exceptions import PicassoInputError
from .images import BANDS
from .inputs import INFERRED_UNITS, target_name
from .masks import DO_NOT_USE, MaskBit
from .sdss import read_psfield

__all__ = [
    "DEFAULT_SOFTENING",
    "PreparationOptions",
    "PreparedTarget",
    "align_bands",
    "estimate_background",
    "estimate_psf",
    "field_backgrounds",
    "frame_read_size",
    "mask_sources",
    "match_psfs",
    "prepare_target",
    "stack_bands",
    "subtract_background",
    "to_model_input",
]

#: Smallest cutout side in pixels that a galaxy can be mapped on.
MIN_IMAGE_SIZE = 16

#: Pixels of the footprint below this r-band signal-to-noise are flagged LOW_SN.
LOW_SN = 3.0

#: asinh softening per band in nanomaggies (Lupton, Gunn & Szalay 1999; the
#: SDSS asinh-magnitude ``b`` values, 1.4, 0.9, 1.2, 1.8 and 7.4 x 1e-10 maggies).
DEFAULT_SOFTENING = {"u": 0.14, "g": 0.09, "r": 0.12, "i": 0.18, "z": 0.74}


def stack_bands(images):
    """Stack aligned band images into a cube in `BANDS` order.

    Parameters
    ----------
    images : dict of str to `~picasso_astro.images.BandImage`
        All five bands, on one grid (see `align_bands`).

    Returns
    -------
    cube : 3D `~numpy.ndarray`
        Shape ``(5, ny, nx)``, nanomaggies, float32; bad pixels are zero.
    mask : 2D bool `~numpy.ndarray`
        True where any band's pixel is bad.
    """
    missing = [band for band in BANDS if band not in images]
    if missing:
        msg = (
            f"missing band(s) {', '.join(missing)}; all of {''.join(BANDS)} are needed"
        )
        raise PicassoInputError(msg)
    shapes = {images[band].shape for band in BANDS}
    if len(shapes) != 1:
        msg = f"the bands are on different grids {sorted(shapes)}; align them first"
        raise PicassoInputError(msg)
    shape = images["r"].shape
    check_image_memory(shape, "the five bands")
    mask = np.zeros(shape, dtype=bool)
    # One allocation, filled band by band: no stacked copy to convert.
    cube = np.empty((len(BANDS), *shape), dtype=np.float32)
    for plane, band in zip(cube, BANDS, strict=True):
        mask |= images[band].bad_pixels()
        plane[...] = images[band].data
    cube[:, mask] = 0.0
    return cube, mask


def to_model_input(cube, mask, *, softening=None):
    """Scale a band cube to the network's input channels.

    Each band becomes ``asinh(flux / b_band)`` (Lupton et al. 1999), bad pixels
    become zero, and a sixth channel holds 1 on good pixels and 0 on bad ones.

    Parameters
    ----------
    cube : `~numpy.ndarray`
        Shape ``(..., 5, ny, nx)`` in nanomaggies.
    mask : `~numpy.ndarray`
        Shape ``(..., ny, nx)``, True on bad pixels.
    softening : sequence of float or dict, optional
        ``b`` per band in nanomaggies; `DEFAULT_SOFTENING` by default.

    Returns
    -------
    x : `~numpy.ndarray`
        Shape ``(..., 6, ny, nx)``, float32.
    """
    if softening is None:
        softening = DEFAULT_SOFTENING
    if isinstance(softening, dict):
        softening = [softening[band] for band in BANDS]
    b = np.asarray(softening, dtype=np.float32).reshape(-1, 1, 1)
    cube = np.asarray(cube)
    mask = np.asarray(mask, dtype=bool)
    # Computed in place in the output: no full-size temporaries.
    x = np.empty((*cube.shape[:-3], cube.shape[-3] + 1, *cube.shape[-2:]), np.float32)
    scaled, good = x[..., :-1, :, :], x[..., -1, :, :]
    np.copyto(scaled, cube, casting="same_kind")
    scaled[~np.isfinite(scaled)] = 0.0
    scaled /= b
    np.arcsinh(scaled, out=scaled)
    np.logical_not(mask, out=good, casting="unsafe")
    scaled *= np.expand_dims(good, -3)
    return x


@dataclass
class PreparedTarget:
    """One galaxy, cut out of its frames and ready for the model.

    Attributes
    ----------
    name : str
        The target's name (or its coordinates).
    coord : `~astropy.coordinates.SkyCoord`
    images : dict of str to `~picasso_astro.images.BandImage`
        The five bands on one grid, preprocessed.
    wcs : `~astropy.wcs.WCS`
        The cutout grid (the reference band's frame WCS, shifted).
    bitmask : 2D int `~numpy.ndarray`
        `~picasso_astro.masks.MaskBit` flags of every pixel: off the image,
        sky, neighbour, star, bad pixel, low S/N.
    input_mask : 2D bool `~numpy.ndarray`
        Pixels blanked in the network's input: bad or off the image, and the
        stars and neighbours when ``mask_sources`` is on.
    steps : dict
        What was done, for the output's ``meta``; ``steps["warnings"]`` lists
        what looks wrong with the target.
    context : `~picasso_astro._context.FrameContext` or None
        The cutout with the frame pixels around it (frames, with the
        ``context`` option above 0), for `network_input`.
    """

    name: str
    coord: SkyCoord
    images: dict
    wcs: WCS
    bitmask: np.ndarray
    input_mask: np.ndarray
    steps: dict = field(default_factory=dict)
    context: FrameContext = None

    def flagged(self, bits):
        """Return where any of ``bits`` (`~picasso_astro.masks.MaskBit`) is set."""
        return (self.bitmask & int(bits)) != 0

    @property
    def coverage(self):
        """2D bool `~numpy.ndarray`: where every band has good data."""
        return ~self.flagged(MaskBit.OFF_IMAGE | MaskBit.BAD_PIXEL)

    @property
    def footprint(self):
        """2D bool `~numpy.ndarray`: the target's own pixels."""
        return ~self.mask

    @property
    def mask(self):
        """2D bool `~numpy.ndarray`: not the target (a ``DO_NOT_USE`` bit set)."""
        return self.flagged(DO_NOT_USE)

    @property
    def source_mask(self):
        """2D bool `~numpy.ndarray`: the stars and neighbours."""
        return self.flagged(MaskBit.STAR | MaskBit.NEIGHBOUR)

    def cube(self):
        """Return the ``(5, ny, nx)`` nanomaggy cube and its input mask."""
        cube, mask = stack_bands(self.images)
        mask = mask | self.input_mask
        cube[:, mask] = 0.0
        return cube, mask

    def model_input(self, *, softening=None):
        """Return the network's input channels (`to_model_input`)."""
        cube, mask = self.cube()
        return to_model_input(cube, mask, softening=softening)

    def network_input(self, *, softening=None, multiple=1):
        """Return what the network sees, and where the cutout lies in it.

        The cutout with its frame context when there is one (see
        `~picasso_astro._context.FrameContext.window`), else the cutout.

        Parameters
        ----------
        softening : dict or sequence of float, optional
            As for `to_model_input`.
        multiple : int
            The network's down-sampling factor (``2**depth``).

        Returns
        -------
        x : `~numpy.ndarray`
            ``(6, ny, nx)`` input channels.
        crop : tuple of slice
            The cutout within ``x``: cut the maps back with it.
        """
        if self.context is None:
            return self.model_input(softening=softening), (slice(None), slice(None))
        window, crop = self.context.window(multiple)
        cube = self.context.cube[(slice(None), *window)]
        x = to_model_input(cube, self.context.mask[window], softening=softening)
        return x, crop


def prepare_target(
    images,
    coord=None,
    *,
    size=None,
    options=None,
    name=None,
    half_light_radius=None,
    psfield=None,
    backgrounds=None,
    **overrides,
):
    """Prepare one galaxy for the model: frames, cutouts and mocks alike.

    Steps, each recorded in ``steps`` and each switched by ``options``: cutout
    (frames) and reprojection of all bands onto the reference band's pixel
    grid; residual background (`subtract_background`); PSF of each band
    (psField, else the one attached to the image, else stars in the frame,
    else ``psf_fwhm``) and matching to the broadest (`match_psfs`); masking of
    stars and neighbours (`mask_sources`). On frames, the background and PSF
    matching work on a cutout ``pad`` pixels larger on each side, trimmed at
    the end, so that edges do not bias them.  The background is estimated on
    that cutout unless ``backgrounds`` gives it (a whole frame's, the same
    for every galaxy of the field: `~picasso_astro.preprocess.field_backgrounds`).

    Parameters
    ----------
    images : dict of str to `~picasso_astro.images.BandImage`
        The five bands: whole frames (or any images larger than the cutout)
        with ``coord``, or the galaxy's cutouts (mocks included) without it.
    coord : `~astropy.coordinates.SkyCoord`, optional
        The target's position in frames (scalar). Without it, the reference
        band's own grid is the cutout and the target is at its centre.
    size : int, `~astropy.units.Quantity` or dict, optional
        Cutout size with ``coord`` (see `~picasso_astro._grid.resolve_cutout_size`);
        256 pixels if omitted.
    options : `PreparationOptions` or dict, optional
        The steps to run; `PreparationOptions` defaults if omitted.
    name : str, optional
    half_light_radius : float or `~astropy.units.Quantity`, optional
        Arcsec; for the half-light size convention.
    psfield : `~picasso_astro.sdss.PSField`, str or `~pathlib.Path`, optional
        The field's psField: the PSF of every band at the target.
    backgrounds : dict of str to tuple, optional
        ``(background, info)`` per band, as
        `~picasso_astro.preprocess.field_backgrounds` returns them: the residual
        background on each image's own grid, subtracted (when the
        ``background`` option is on) instead of estimated on the cutout.
    **overrides
        Options by name (``background=False``, ``psf_fwhm=1.4``, ...),
        applied over ``options``.

    Returns
    -------
    target : `PreparedTarget`

    Raises
    ------
    PicassoInputError
        For an unknown option, a missing band, a target off the frame, bands
        that do not overlap, or no way to get a PSF when matching.
    """
    if not isinstance(options, PreparationOptions):
        options = PreparationOptions.from_dict(options)
    options = options.replace(overrides)
    ref = options.reference_band
    missing = [band for band in BANDS if band not in images]
    if missing:
        label = name or "the target"
        msg = f"{label}: missing band(s) {', '.join(missing)}; all of ugriz are needed"
        raise PicassoInputError(msg)
    if isinstance(psfield, str | Path):
        psfield = read_psfield(psfield)
    if options.background and backgrounds is not None:
        backgrounds = _check_backgrounds(images, backgrounds, name)
    else:
        backgrounds = None
    whole_image = coord is None
    if whole_image:
        grid = _whole_image_grid(images, ref, name, backgrounds)
    else:
        coord = SkyCoord(coord)
        grid = _frame_grid(
            images, coord, size, half_light_radius, name, options, backgrounds
        )
    stamps, inner, centre, coord = grid
    name = name or target_name(coord)
    steps = {
        "options": options.to_dict(),
        "size": [int(s.stop - s.start) for s in inner],
        "reference_band": ref,
        "alignment": {
            band: stamps[band].meta.get("reprojected_to")
            and f"reprojected onto {stamps[band].meta['reprojected_to']}"
            for band in BANDS
        },
    }
    flux = {band: images[band].meta.get("flux_unit") for band in BANDS}
    if any(flux.values()):
        steps["flux_unit"] = flux
    _check_flux(stamps[ref], centre, name)

    if options.background:
        info = {}
        for band in BANDS:
            # A given background was subtracted as the bands were cut: what
            # is left to do is its record, and bad pixels set to NaN.
            given = None if backgrounds is None else (0.0, backgrounds[band][1])
            stamps[band], info[band] = subtract_background(
                stamps[band], background=given
            )
        steps["background"] = info
    else:
        steps["background"] = False

    psfs, fwhms, sources = {}, {}, {}
    for band in BANDS:
        try:
            psfs[band], fwhms[band], sources[band] = psf_for_band(
                images[band],
                position=coord,
                psfield=psfield,
                fallback_fwhm=options.psf_fwhm,
            )
        except PicassoInputError as err:
            if options.match_psf:
                psfs[band], fwhms[band], sources[band] = assumed_psf(
                    band, str(err), name=name
                )
            else:
                psfs[band], fwhms[band], sources[band] = None, None, None
    steps["psf_source"] = sources
    steps["psf_fwhm_arcsec"] = fwhms
    if options.match_psf:
        stamps, steps["psf_matching"] = match_psfs(stamps, psfs, fwhms)
    else:
        steps["psf_matching"] = False

    reference = stamps[ref]
    wcs = None if reference.wcs is None else reference.wcs.slice(inner)
    trimmed = {}
    for band in BANDS:
        image = stamps[band]
        meta = dict(image.meta)
        if OFF_IMAGE in meta:
            meta[OFF_IMAGE] = meta[OFF_IMAGE][inner]
        if "cutout_origin" in meta:
            x0, y0 = meta["cutout_origin"]
            meta["cutout_origin"] = (x0 + inner[1].start, y0 + inner[0].start)
        trimmed[band] = image.replace(
            data=image.data[inner],
            wcs=wcs,
            noise=None if image.noise is None else image.noise[inner],
            mask=None if image.mask is None else image.mask[inner],
            psf=image.psf if options.match_psf else psfs[band],
            psf_fwhm=image.psf_fwhm if options.match_psf else fwhms[band],
            meta=meta,
        )
    known = [v for v in fwhms.values() if v is not None]
    # Sources on the padded stamp, so that those cut by the edge are seen whole.
    sources = classify_sources(
        stamps,
        centre=centre,
        psf_fwhm=max(known) if known else None,
        isophote=options.isophote,
        reference_band=ref,
    )
    bitmask = _bitmask(trimmed, sources, inner, ref)
    steps["source_mask"] = dict(
        sources.info,
        masked_in_input=options.mask_sources,
        target_area_pix=int(sources.target[inner].sum()),
    )
    input_mask = _flag(bitmask, MaskBit.OFF_IMAGE | MaskBit.BAD_PIXEL)
    if options.mask_sources:
        input_mask |= _flag(bitmask, MaskBit.STAR | MaskBit.NEIGHBOUR)
    steps["coverage_fraction"] = float(
        1 - _flag(bitmask, MaskBit.OFF_IMAGE | MaskBit.BAD_PIXEL).mean()
    )
    found = target_warnings(
        name, bitmask, sources.info, images[ref], whole_image=whole_image
    )
    inferred = [band for band in BANDS if flux[band] in INFERRED_UNITS]
    if inferred:
        found.append(
            (
                "InferredUnitWarning",
                f"{name}: no BUNIT in the {''.join(inferred)} image(s), so their "
                f"unit was inferred ({flux[inferred[0]]}); set BUNIT "
                "('nanomaggy', or 'counts' with NMGY) to be sure of the fluxes",
            )
        )
    # Lists, not tuples: the steps go through JSON into the FITS header.
    steps["warnings"] = [list(entry) for entry in found]
    context = None
    if not whole_image and options.context:
        context = _frame_context(stamps, sources, inner, options)
    return PreparedTarget(
        name=name,
        coord=coord,
        images=trimmed,
        wcs=wcs,
        bitmask=bitmask,
        input_mask=input_mask,
        steps=steps,
        context=context,
    )


def _frame_context(stamps, sources, inner, options):
    """Return the padded stamps as the network's input, masked as the cutout."""
    cube, mask = stack_bands(stamps)
    for image in stamps.values():
        mask |= off_image(image)
    if options.mask_sources:
        mask |= sources.stars | sources.neighbours
    cube[:, mask] = 0.0
    x0, y0 = stamps[options.reference_band].meta["cutout_origin"]
    return FrameContext(cube, mask, inner, (x0, y0), options.context)


def field_backgrounds(sdss_field):
    """Return the residual background of each of a field's whole frames.

    `estimate_background` on every band's whole frame (read whole if only some
    rows of it were read), once per field: one fixed tiling of the frame, so
    that every cutout of the field gets the same background on the pixels they
    share, wherever it is cut. Kept in the field's ``cache`` until it is
    cleared. The result is what `prepare_target` takes as ``backgrounds``.

    Parameters
    ----------
    sdss_field : `~picasso_astro.sdss.SDSSField`

    Returns
    -------
    backgrounds : dict of str to (2D `~numpy.ndarray`, dict)
        Per band: the background in nanomaggies (float32, the whole frame's
        shape) and its ``median``, ``rms``, box size and ``"scope": "field"``.
    """
    return {band: field_background(sdss_field, band) for band in BANDS}


def field_background(sdss_field, band):
    """Return one band's entry of `field_backgrounds` (estimated once per field)."""
    key = ("background", band)
    if key not in sdss_field.cache:
        background, info = estimate_background(sdss_field.image(band))
        info = dict(info, scope="field")
        sdss_field.cache[key] = (background.astype(np.float32), info)
    return sdss_field.cache[key]


def _check_backgrounds(images, backgrounds, name):
    """Return ``{band: (array, info)}``, refusing one that does not fit its image."""
    checked = {}
    for band in BANDS:
        entry = backgrounds.get(band)
        if entry is None:
            msg = f"{name or 'the target'}: backgrounds lack the {band} band"
            raise PicassoInputError(msg)
        array, info = entry
        array = np.asarray(array, dtype=np.float32)
        if array.shape != images[band].shape:
            msg = (
                f"{name or 'the target'}: the {band}-band background has shape "
                f"{array.shape} but its image {images[band].shape}; give each "
                "band's background on its image's own grid"
            )
            raise PicassoInputError(msg)
        checked[band] = (array, dict(info))
    return checked


def _check_flux(reference, centre, name):
    """Refuse a reference band that is negative where the galaxy is."""
    data = reference.data[np.isfinite(reference.data)]
    if data.size == 0:
        return
    cy, cx = (round(v) for v in centre)
    core = reference.data[max(cy - 2, 0) : cy + 3, max(cx - 2, 0) : cx + 3]
    if np.nanmedian(core) < 0 and np.percentile(data, 99) < 0:
        msg = (
            f"{name}: the {reference.band}-band image is negative at the galaxy "
            f"and almost everywhere else (99th percentile "
            f"{np.percentile(data, 99):.3g}): these are not fluxes in nanomaggies "
            "(an inverted image, or magnitudes?); give sky-subtracted fluxes"
        )
        raise PicassoInputError(msg)


def _flag(bitmask, bits):
    return (bitmask & int(bits)) != 0


def _bitmask(images, sources, inner, ref):
    """Return the `~picasso_astro.masks.MaskBit` flags of a prepared cutout."""
    shape = images[ref].shape
    off = np.zeros(shape, bool)
    bad = np.zeros(shape, bool)
    for image in images.values():
        off |= off_image(image)
        bad |= image.bad_pixels()
    bits = np.zeros(shape, np.int32)
    bits[off] |= int(MaskBit.OFF_IMAGE)
    bits[bad & ~off] |= int(MaskBit.BAD_PIXEL)
    bits[sources.stars[inner]] |= int(MaskBit.STAR)
    bits[sources.neighbours[inner]] |= int(MaskBit.NEIGHBOUR)
    footprint = sources.footprint[inner]
    bits[~footprint & (bits == 0)] |= int(MaskBit.SKY)
    reference = images[ref]
    noise = reference.noise
    if noise is None:
        sky = (bits & int(MaskBit.SKY)) != 0
        noise = mad_std(reference.data[sky]) if sky.sum() > 100 else np.nan
    with np.errstate(invalid="ignore", divide="ignore"):
        snr = reference.data / noise
    bits[footprint & ~(snr >= LOW_SN) & np.isfinite(snr)] |= int(MaskBit.LOW_SN)
    return bits


def _whole_image_grid(images, ref, name, backgrounds=None):
    """Cutouts: the reference band's grid, the target at its centre."""
    ny, nx = images[ref].shape
    if min(ny, nx) < MIN_IMAGE_SIZE:
        msg = (
            f"the images are {nx} x {ny} pixels, too small to map a galaxy (the "
            f"network needs at least {MIN_IMAGE_SIZE} x {MIN_IMAGE_SIZE}); give "
            "cutouts that hold the whole galaxy and some sky, e.g. 64 pixels"
        )
        raise PicassoInputError(msg)
    check_image_memory((ny, nx), name or "the images")
    if backgrounds is not None:
        images = {
            band: image.replace(data=image.data - backgrounds[band][0])
            for band, image in images.items()
        }
    stamps = align_bands(images, reference_band=ref)
    centre = ((ny - 1) / 2, (nx - 1) / 2)
    wcs = stamps[ref].wcs
    coord = None
    if wcs is not None and wcs.has_celestial:
        coord = wcs.pixel_to_world(centre[1], centre[0])
    return stamps, (slice(0, ny), slice(0, nx)), centre, coord


def _frame_pad(options):
    """Frame pixels around a cutout for the background, PSF matching and context."""
    needed = options.background or options.match_psf or options.context
    return options.pad if needed else 0


def frame_read_size(size=None, *, options=None, half_light_radius=None):
    """Return the side in pixels of the frame square `prepare_target` uses.

    The cutout, ``pad`` pixels more on each side when the background or the
    PSF matching run, and the margin that the bands other than the reference
    are cut with before they are put on its grid.  Reading the frame rows
    that this square around a target covers
    (`~picasso_astro.sdss.SDSSField.images` with ``around``) gives the
    target's images as the whole frames do.

    Parameters
    ----------
    size, options, half_light_radius
        As for `prepare_target`.

    Returns
    -------
    side : int
    """
    if not isinstance(options, PreparationOptions):
        options = PreparationOptions.from_dict(options)
    npix = resolve_cutout_size(
        256 if size is None else size, half_light_radius=half_light_radius
    )
    return npix + 2 * _frame_pad(options) + 2 * BAND_MARGIN


def _frame_grid(images, coord, size, half_light_radius, name, options, backgrounds):
    """Frames: a padded cutout around ``coord``, and the final cutout within it."""
    ref = options.reference_band
    npix = resolve_cutout_size(
        256 if size is None else size, half_light_radius=half_light_radius
    )
    if images[ref].wcs is None:
        msg = "the reference band has no WCS: cutouts around sky positions need one"
        raise PicassoInputError(msg)
    if not bool(on_image(images[ref], coord)):
        label = name or target_name(coord)
        msg = f"target {label} lies outside the {ref}-band frame"
        raise PicassoInputError(msg)
    pad = _frame_pad(options)
    check_image_memory((npix, npix), name or target_name(coord), pad=pad)
    stamps = cutout_bands(
        images,
        coord,
        npix + 2 * pad,
        reference_band=ref,
        margin=BAND_MARGIN,
        backgrounds=None
        if backgrounds is None
        else {band: array for band, (array, _) in backgrounds.items()},
    )
    # Both sizes have the same parity, so the final cutout is the padded one
    # less ``pad`` pixels on each side.
    inner = (slice(pad, pad + npix), slice(pad, pad + npix))
    x, y = stamps[ref].wcs.world_to_pixel(coord)
    return stamps, inner, (float(y), float(x)), coord
