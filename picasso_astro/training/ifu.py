"""Training sets from IFU maps: real SDSS images with IFU truth (``picasso-train ifu``).

Each galaxy's five SDSS bands are prepared by
`~picasso_astro.preprocess.prepare_target`, exactly as `predict` prepares
them, on a cutout centred on the IFU's field; the IFU maps
(`~picasso_astro.ifu.read_ifu`) are resampled onto the cutout's grid
(surface densities as linear quantities, totals kept). The records are those
of every dataset (`~picasso_astro.training.dataset`), with truth planes in
the order of `~picasso_astro.properties.PROPERTIES`:

- a property the IFU does not give (for MaNGA: HI, stellar mass, ...) is NaN
  and ``truth_valid`` False everywhere;
- a pixel outside the IFU's field, or not wholly within its valid spaxels
  (masked, low S/N, AGN for SFR), is NaN and ``truth_valid`` False.

NaN truth carries no loss weight, so the trainer learns only from what the
IFU measured. The truth keeps the IFU's resolution (about 2.5 arcsec for
MaNGA and CALIFA), coarser than the images; ``params["ifu_psf_fwhm"]`` records it.
"""

from pathlib import Path

import numpy as np

from .._psf import resize_odd
from ..exceptions import PicassoInputError
from ..ifu import read_ifu
from ..ifu._resample import linear, logarithm, resample_exact
from ..images import BANDS
from ..maps import PropertyMaps
from ..masks import MaskBit
from ..preprocess import PreparationOptions, prepare_target
from ..properties import PROPERTIES
from .dataset import ShardWriter, base_attrs, shard_path, write_manifest

__all__ = [
    "PSF_SIZE",
    "ifu_record",
    "truth_on_grid",
    "write_ifu_dataset",
]

#: Side of the PSF images stored per band.
PSF_SIZE = 25
#: Least fraction of a cutout pixel that valid IFU spaxels must cover.
MIN_VALID_FRACTION = 0.99
#: Version of the IFU training-set writer, in every manifest.
WRITER_VERSION = 1


def truth_on_grid(truth, wcs, shape):
    """Resample IFU truth maps onto a cutout's grid.

    Parameters
    ----------
    truth : `~picasso_astro.maps.PropertyMaps`
        IFU maps (`~picasso_astro.ifu.read_ifu`).
    wcs : `~astropy.wcs.WCS`
        The cutout's celestial WCS.
    shape : tuple of int
        ``(ny, nx)`` of the cutout.

    Returns
    -------
    values : `~numpy.ndarray`
        ``(P, ny, nx)`` float32 log10 truth in the order of
        `~picasso_astro.properties.PROPERTIES`; NaN where not measured.
    valid : `~numpy.ndarray`
        ``(P, ny, nx)`` bool.
    """
    values = np.full((len(PROPERTIES), *shape), np.nan, np.float32)
    valid = np.zeros((len(PROPERTIES), *shape), bool)
    for plane, (name, prop) in enumerate(PROPERTIES.items()):
        if name not in truth:
            continue
        nd = truth[name]
        good = ~np.asarray(nd.mask, bool) & np.isfinite(nd.data)
        quantity = np.where(good, linear(prop, nd.data), np.nan)
        (mean, fraction), coverage = resample_exact(
            (quantity, good.astype(float)), truth.wcs, wcs, shape
        )
        usable = (coverage >= MIN_VALID_FRACTION) & (fraction >= MIN_VALID_FRACTION)
        value = logarithm(prop, mean)
        usable &= np.isfinite(value)
        values[plane] = np.where(usable, value, np.nan)
        valid[plane] = usable
    return values, valid


def _fit_psf(psf, size=PSF_SIZE):
    """Return the PSF at the dataset's size, summing to one (a point if unknown)."""
    if psf is None:
        out = np.zeros((size, size), np.float32)
        out[size // 2, size // 2] = 1.0
        return out
    return resize_odd(psf, size).astype(np.float32)


def _noise_levels(prepared, cube):
    """Per-band sky noise: the median noise map, else the sky pixels' spread."""
    sky = prepared.flagged(MaskBit.SKY) & ~prepared.flagged(
        MaskBit.OFF_IMAGE | MaskBit.BAD_PIXEL
    )
    levels = []
    for k, band in enumerate(BANDS):
        noise = prepared.images[band].noise
        if noise is not None and np.isfinite(noise).any():
            levels.append(float(np.nanmedian(noise)))
        elif sky.sum() > 10:
            from astropy.stats import mad_std

            levels.append(float(mad_std(cube[k][sky])))
        else:
            levels.append(0.0)
    return levels


def ifu_record(truth, images, index, *, size=128, options=None, psfield=None):
    """Turn one galaxy's IFU maps and SDSS images into a dataset record.

    Parameters
    ----------
    truth : `~picasso_astro.maps.PropertyMaps`
        IFU maps of the galaxy.
    images : dict of str to `~picasso_astro.images.BandImage`
        The five bands, frames or images covering the IFU's field.
    index : int
        The galaxy's index in the dataset.
    size : int
        Cutout side in pixels, centred on the IFU's field.
    options : `~picasso_astro.preprocess.PreparationOptions` or dict, optional
        How to prepare the images (as the model to train will).
    psfield : optional
        The field's psField, for the PSFs.

    Returns
    -------
    record : dict
        As `~picasso_astro.training.dataset.ShardWriter` stores it.
    """
    ny, nx = truth.shape
    centre = truth.wcs.celestial.pixel_to_world((nx - 1) / 2, (ny - 1) / 2)
    name = str(truth.meta.get("galaxy", f"IFU galaxy {index}"))
    prepared = prepare_target(
        images, centre, size=size, options=options, name=name, psfield=psfield
    )
    cube, mask = prepared.cube()
    values, valid = truth_on_grid(truth, prepared.wcs, mask.shape)
    if not valid.any():
        msg = (
            f"{name}: none of the IFU's valid spaxels falls on the SDSS cutout; "
            "check that the images cover the IFU's field"
        )
        raise PicassoInputError(msg)
    return {
        "images": cube,
        "mask": mask,
        "noise_level": _noise_levels(prepared, cube),
        # Frames are sky-limited for galaxies; the source term is not modelled.
        "poisson_scale": [0.0] * len(BANDS),
        "contaminant": prepared.source_mask,
        "truth": values,
        "truth_valid": valid,
        "psf": np.stack([_fit_psf(prepared.images[b].psf) for b in BANDS]),
        "index": index,
        "params": {
            "ra": float(centre.ra.deg),
            "dec": float(centre.dec.deg),
            "redshift": float(truth.meta.get("redshift") or np.nan),
            "ifu_psf_fwhm": float(truth.meta.get("psf_fwhm_arcsec") or np.nan),
            **{f"n_valid_{n}": float(valid[k].sum()) for k, n in enumerate(PROPERTIES)},
        },
        "extras": {
            "galaxy": name,
            "ifu_source": truth.meta.get("source"),
            "inputs": truth.meta.get("inputs", []),
            "calibrations": truth.meta.get("calibrations", {}),
        },
    }


_PARAM_NAMES = (
    "ra",
    "dec",
    "redshift",
    "ifu_psf_fwhm",
    *(f"n_valid_{name}" for name in PROPERTIES),
)


def _galaxy_truth(galaxy, ifu_options):
    truth = galaxy["ifu"]
    if isinstance(truth, PropertyMaps):
        return truth
    return read_ifu(truth, **(ifu_options or {}))


def _galaxy_images(galaxy, truth):
    """Return the five bands of one galaxy and the psField, from images or frames."""
    if galaxy.get("images") is not None:
        return galaxy["images"], galaxy.get("psfield")
    frames = galaxy.get("frames")
    if frames is None:
        msg = (
            f"{truth.meta.get('galaxy', 'a galaxy')}: give its SDSS images or "
            "frames (frames=DIR, or run, camcol, field to download them)"
        )
        raise PicassoInputError(msg)
    from ..sdss import find_frames

    ny, nx = truth.shape
    centre = truth.wcs.celestial.pixel_to_world((nx - 1) / 2, (ny - 1) / 2)
    for field in find_frames(frames).values():
        wcs, _ = field.geometry()  # from the header: frames are read once found
        if wcs.footprint_contains(centre):
            return field.images(), field.psfield_data()
    msg = (
        f"{truth.meta.get('galaxy', 'a galaxy')}: no frame in {frames} covers the "
        f"IFU's field at RA {centre.ra.deg:.5f}, Dec {centre.dec.deg:.5f}; fetch "
        "the field's frames (picasso-train ifu --download with run, camcol, field)"
    )
    raise PicassoInputError(msg)


def write_ifu_dataset(
    directory,
    galaxies,
    *,
    size=128,
    shard_size=64,
    preprocessing=None,
    ifu_options=None,
    on_error="raise",
    progress=False,
):
    """Write a training set from IFU products and the SDSS images covering them.

    Parameters
    ----------
    directory : str or `~pathlib.Path`
        The dataset directory (``dataset.json`` and ``shard-*.h5``); must not
        hold a dataset yet.
    galaxies : iterable of dict
        Per galaxy: ``"ifu"``, a file for `~picasso_astro.ifu.read_ifu` or
        `~picasso_astro.maps.PropertyMaps`; and ``"images"`` (dict of
        `~picasso_astro.images.BandImage`, optionally with ``"psfield"``) or
        ``"frames"`` (a directory or files of SDSS frames that cover it).
    size : int
        Cutout side in pixels.
    shard_size : int
        Galaxies per shard.
    preprocessing : dict or `~picasso_astro.preprocess.PreparationOptions`, optional
        How the images are prepared; the model trained on the set records it.
    ifu_options : dict, optional
        Options of `~picasso_astro.ifu.read_ifu` (``drpall=``, ``calibration=``).
    on_error : {"raise", "skip"}
        Stop at a galaxy that cannot be used, or report it and go on.
    progress : bool
        Show a progress bar.

    Returns
    -------
    report : dict
        ``{"written": [names], "skipped": [(name, reason)]}``.
    """
    from tqdm.auto import tqdm

    directory = Path(directory)
    if (directory / "dataset.json").exists():
        msg = f"{directory} already holds a dataset; choose another directory"
        raise PicassoInputError(msg)
    if on_error not in ("raise", "skip"):
        msg = f"on_error must be 'raise' or 'skip', not {on_error!r}"
        raise PicassoInputError(msg)
    options = PreparationOptions.from_dict(preprocessing)
    records, written, skipped = [], [], []
    for galaxy in tqdm(list(galaxies), disable=not progress, desc="IFU galaxies"):
        label = str(galaxy.get("ifu"))
        try:
            truth = _galaxy_truth(galaxy, ifu_options)
            label = str(truth.meta.get("galaxy", label))
            images, psfield = _galaxy_images(galaxy, truth)
            record = ifu_record(
                truth, images, len(records), size=size, options=options, psfield=psfield
            )
        except PicassoInputError as exc:
            if on_error == "raise":
                raise
            skipped.append((label, str(exc)))
            continue
        records.append(record)
        written.append(label)
    if not records:
        msg = "no galaxy could be used: " + "; ".join(r for _, r in skipped)
        raise PicassoInputError(msg)
    manifest = {
        "kind": "ifu",
        "writer_version": WRITER_VERSION,
        "seed": 0,
        "size": int(size),
        "shard_size": int(shard_size),
        "n": len(records),
        "galaxies": written,
        "preprocessing": options.recorded(),
        **base_attrs(),
    }
    attrs = {k: v for k, v in manifest.items() if k not in ("n", "galaxies")}
    directory.mkdir(parents=True, exist_ok=True)
    for number, first in enumerate(range(0, len(records), shard_size)):
        chunk = records[first : first + shard_size]
        shard_attrs = dict(attrs, first_index=first, count=len(chunk))
        with ShardWriter(
            shard_path(directory, number),
            len(chunk),
            (size, size),
            _PARAM_NAMES,
            attrs=shard_attrs,
            psf_size=PSF_SIZE,
        ) as writer:
            for slot, record in enumerate(chunk):
                writer.write(slot, record)
    write_manifest(directory, manifest)
    return {"written": written, "skipped": skipped}
