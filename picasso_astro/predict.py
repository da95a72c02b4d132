"""The public `predict`: from images to `~picasso_astro.maps.PropertyMaps`."""

import warnings
from numbers import Integral

import numpy as np

from . import __version__
from ._inference import AUTO_BATCH_LIMIT, auto_batch_size, resolve_precision
from .exceptions import PicassoInputError, PicassoWarning
from .hub import load_model
from .inputs import parse_inputs
from .maps import PropertyMaps
from .preprocess import _parse_targets, align_bands, stack_bands, to_model_input

__all__ = ["predict", "resolve_device", "run_network"]

#: Images larger than this on a side are processed in overlapping tiles.
DEFAULT_TILE_SIZE = 512
#: Pixels discarded at each inner tile edge, where the network sees no context.
TILE_MARGIN = 32


def resolve_device(device="auto"):
    """Return the `torch.device` to run on.

    Parameters
    ----------
    device : str or `torch.device`
        ``"auto"`` (CUDA when available, else CPU), ``"cpu"``, ``"cuda"``,
        ``"cuda:1"``, ...
    """
    import torch

    if isinstance(device, torch.device):
        return device
    if device is None or device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(device)
    except (RuntimeError, TypeError):
        msg = f"unknown device {device!r}; use 'auto', 'cpu' or 'cuda'"
        raise PicassoInputError(msg) from None
    if device.type == "cuda" and not torch.cuda.is_available():
        msg = "device 'cuda' was asked for but no CUDA GPU is available; use 'cpu'"
        raise PicassoInputError(msg)
    return device


def _tile_starts(length, tile, step):
    if length <= tile:
        return [0]
    starts = list(range(0, length - tile, step))
    starts.append(length - tile)
    return starts


def run_network(
    network,
    x,
    *,
    device,
    tile_size=DEFAULT_TILE_SIZE,
    batch_size="auto",
    precision="auto",
):
    """Run the network on a batch of model inputs of one size.

    Parameters
    ----------
    network : `~picasso_astro.model.PicassoUNet`
    x : `~numpy.ndarray`
        Shape ``(n, channels, ny, nx)``, float32.
    device : `torch.device`
    tile_size : int
        Larger images are cut into overlapping tiles of this size, and only the
        inner part of each tile (``TILE_MARGIN`` pixels in from inner edges) is
        kept.
    batch_size : int or "auto"
        Inputs run through the network together; ``"auto"`` chooses from the
        free memory (`~picasso_astro._inference.auto_batch_size`).
    precision : {"auto", "float32", "bfloat16"}
        Precision of the convolutions: ``"auto"`` is bfloat16 autocast on CUDA
        GPUs that support it and float32 otherwise. The heads and the decoding
        always run in float32.

    Returns
    -------
    values, sigmas : `~numpy.ndarray`
        Shape ``(n, n_properties, ny, nx)``, float32.
    """
    import torch

    _check_batch_size(batch_size)
    dtype = resolve_precision(precision, device)
    n, _, ny, nx = x.shape
    n_props = len(network.property_names)
    values = np.empty((n, n_props, ny, nx), dtype=np.float32)
    sigmas = np.empty_like(values)
    step = tile_size - 2 * TILE_MARGIN
    with torch.inference_mode():
        for y0 in _tile_starts(ny, tile_size, step):
            for x0 in _tile_starts(nx, tile_size, step):
                y1, x1 = min(y0 + tile_size, ny), min(x0 + tile_size, nx)
                batch = batch_size
                if batch == "auto":
                    batch = auto_batch_size(network, (y1 - y0, x1 - x0), device)
                for i0 in range(0, n, batch):
                    i1 = min(i0 + batch, n)
                    tile = np.ascontiguousarray(x[i0:i1, :, y0:y1, x0:x1])
                    tile = torch.from_numpy(tile).to(
                        device, memory_format=torch.channels_last
                    )
                    with torch.autocast(
                        device.type, dtype=dtype, enabled=dtype != torch.float32
                    ):
                        value, sigma = network.predict(tile)
                    # Keep the tile's inner part; image edges are kept in full.
                    ky0 = 0 if y0 == 0 else TILE_MARGIN
                    kx0 = 0 if x0 == 0 else TILE_MARGIN
                    ky1 = y1 - y0 if y1 == ny else y1 - y0 - TILE_MARGIN
                    kx1 = x1 - x0 if x1 == nx else x1 - x0 - TILE_MARGIN
                    region = (
                        slice(i0, i1),
                        slice(None),
                        slice(y0 + ky0, y0 + ky1),
                        slice(x0 + kx0, x0 + kx1),
                    )
                    values[region] = value[..., ky0:ky1, kx0:kx1].cpu().numpy()
                    sigmas[region] = sigma[..., ky0:ky1, kx0:kx1].cpu().numpy()
    return values, sigmas


def _check_batch_size(batch_size):
    valid_int = isinstance(batch_size, Integral) and not isinstance(batch_size, bool)
    if batch_size != "auto" and not (valid_int and batch_size >= 1):
        msg = f"batch_size must be a positive integer or 'auto', not {batch_size!r}"
        raise ValueError(msg)


def _prepare(galaxy, config):
    aligned = align_bands(galaxy.images)
    cube, mask = stack_bands(aligned)
    x = to_model_input(cube, mask, softening=config.softening)
    steps = {
        band: image.meta.get("reprojected_to")
        and f"reprojected onto {image.meta['reprojected_to']}"
        for band, image in aligned.items()
    }
    flux = {band: image.meta.get("flux_unit") for band, image in galaxy.images.items()}
    return x, mask, aligned["r"].wcs, {"alignment": steps, "flux_unit": flux}


class _FrameGalaxy:
    """A galaxy cut out of SDSS frames (`~picasso_astro.preprocess.PreparedTarget`)."""

    def __init__(self, target, sources):
        self.target = target
        self.name = target.name
        self.sources = sources

    def model_input(self, config):
        cube, mask = self.target.cube()
        x = to_model_input(cube, mask, softening=config.softening)
        return x, mask, self.target.wcs, self.target.steps


def _cutout_size(config):
    cutout = config.cutout
    if cutout.get("kind") == "half_light":
        return {"half_light_radii": float(cutout["factor"])}
    return int(cutout.get("size", 256))


def _target_label(name, coord):
    if name:
        return str(name)
    return f"J{coord.ra.deg:09.5f}{coord.dec.deg:+09.5f}"


def _frame_galaxies(frames, parsed_targets, config, options):
    """Yield one `_FrameGalaxy` (or the error) per target, reading each frame once."""
    from .preprocess import prepare_target
    from .sdss import SDSSField, find_frames, frames_containing

    coords, names, radii = parsed_targets
    if isinstance(frames, dict) and all(
        isinstance(v, SDSSField) for v in frames.values()
    ):
        fields = frames
    else:
        fields = find_frames(frames)
    options = dict(options or {})
    # A frame whose header cannot be read fails only the targets that no other
    # frame holds, not the whole catalogue.
    readable, unreadable = {}, []
    for key, field in fields.items():
        try:
            field.contains(coords[0])
            readable[key] = field
        except PicassoInputError as exc:
            unreadable.append(str(exc))
    for index, coord in enumerate(coords):
        label = _target_label(names[index], coord)
        try:
            found = frames_containing(coord, readable)
            if not found:
                msg = (
                    f"target {label} (RA {coord.ra.deg:.5f}, Dec {coord.dec.deg:+.5f}) "
                    "lies outside every frame given; check its coordinates or add "
                    "the frames that contain it"
                )
                if unreadable:
                    msg += "; some frames could not be read: " + "; ".join(unreadable)
                raise PicassoInputError(msg)
            field = found[0]
            target_options = dict(options)
            if target_options.get("psfield") is None:
                target_options["psfield"] = field.psfield_data()
            target = prepare_target(
                field.images(),
                coord,
                size=_cutout_size(config),
                name=label,
                half_light_radius=None if radii is None else radii[index],
                **target_options,
            )
            target.steps["field"] = field.name
            sources = [str(field.image(band).meta.get("file", "")) for band in "ugriz"]
            yield _FrameGalaxy(target, sources)
        except PicassoInputError as exc:
            yield exc


def _progress(iterable, enabled, total):
    if not enabled:
        return iterable
    from tqdm.auto import tqdm

    return tqdm(iterable, total=total, unit="galaxy", desc="picasso")


def predict(
    inputs,
    *,
    targets=None,
    model=None,
    device="auto",
    batch_size="auto",
    on_error="raise",
    progress=False,
    tile_size=DEFAULT_TILE_SIZE,
    preprocessing=None,
):
    """Predict resolved property maps for one or more galaxies.

    Parameters
    ----------
    inputs : str, `~pathlib.Path`, HDUList, NDData, dict or list
        Five single-band FITS cutouts (band from the FILTER/BAND keyword or the
        file name, any order; files of several galaxies are grouped by name),
        five-plane cubes (file, HDUList or NDData/CCDData in u, g, r, i, z
        order), or dicts ``{band: file, HDU or NDData}``. Bands on different
        grids are reprojected onto the r-band grid. Images must be in
        nanomaggies, or in counts with an ``NMGY`` keyword. With ``targets``:
        whole SDSS corrected frames (a directory, a list of
        ``frame-*.fits[.bz2]`` files, or the dict of
        `~picasso_astro.sdss.find_frames`).
    targets : `~astropy.coordinates.SkyCoord` or `~astropy.table.Table`, optional
        Galaxy positions in the frames (a table needs ``ra`` and ``dec`` in
        degrees and may have ``name`` and ``half_light_radius`` in arcsec). Each
        galaxy is cut out at the model's cutout size, its bands aligned,
        background-subtracted, PSF-matched and cleaned of stars and neighbours
        (`~picasso_astro.preprocess.prepare_target`).
    model : str, `~pathlib.Path` or `~picasso_astro.hub.PicassoModel`, optional
        A model directory or a loaded model; the bundled default if omitted.
    device : str
        ``"auto"``, ``"cpu"`` or ``"cuda"``.
    batch_size : int or "auto"
        Galaxies of the same size run through the network together. ``"auto"``
        chooses from the free memory (GPU memory on CUDA, available RAM on CPU)
        and the image size, up to 64.
    on_error : {"raise", "skip"}
        What to do with a galaxy whose input is unusable: raise, or warn and put
        None in its place.
    progress : bool
        Show a progress bar.
    tile_size : int
        Images larger than this on a side are processed in overlapping tiles.
    preprocessing : dict, optional
        Options for `~picasso_astro.preprocess.prepare_target` with ``targets``,
        e.g. ``{"match_psf": False, "psf_fwhm": 1.4}``.

    Returns
    -------
    maps : list of `~picasso_astro.maps.PropertyMaps` or None
        One per galaxy, in input order; None for a skipped galaxy.
    """
    import torch

    if on_error not in ("raise", "skip"):
        msg = f"on_error must be 'raise' or 'skip', not {on_error!r}"
        raise ValueError(msg)
    _check_batch_size(batch_size)
    gather = AUTO_BATCH_LIMIT if batch_size == "auto" else batch_size
    loaded = load_model(model)
    torch_device = resolve_device(device)
    loaded.to(torch_device)
    loaded.network.to(memory_format=torch.channels_last)
    if targets is not None:
        parsed = _parse_targets(targets)
        galaxies = _frame_galaxies(inputs, parsed, loaded.config, preprocessing)
        total = len(parsed[0])
    else:
        if preprocessing:
            msg = "preprocessing options apply only to frames with targets="
            raise ValueError(msg)
        galaxies = parse_inputs(inputs)
        total = len(galaxies)
    results = [None] * total

    def fail(index, error):
        if on_error == "raise":
            raise error
        warnings.warn(f"skipped: {error}", PicassoWarning, stacklevel=3)

    prepared = []
    for index, galaxy in enumerate(_progress(galaxies, progress, total)):
        if isinstance(galaxy, Exception):
            fail(index, galaxy)
            continue
        try:
            if isinstance(galaxy, _FrameGalaxy):
                prepared.append((index, galaxy, *galaxy.model_input(loaded.config)))
            else:
                prepared.append((index, galaxy, *_prepare(galaxy, loaded.config)))
        except PicassoInputError as exc:
            fail(index, exc)
            continue
        if len(prepared) >= gather:
            _run_batch(prepared, loaded, torch_device, tile_size, batch_size, results)
            prepared = []
    if prepared:
        _run_batch(prepared, loaded, torch_device, tile_size, batch_size, results)
    return results


def _run_batch(prepared, loaded, device, tile_size, batch_size, results):
    by_shape = {}
    for item in prepared:
        by_shape.setdefault(item[2].shape, []).append(item)
    for items in by_shape.values():
        x = np.stack([item[2] for item in items])
        values, sigmas = run_network(
            loaded.network,
            x,
            device=device,
            tile_size=tile_size,
            batch_size=batch_size,
        )
        for (index, galaxy, _, mask, wcs, steps), value, sigma in zip(
            items, values, sigmas, strict=True
        ):
            meta = {
                "galaxy": galaxy.name,
                "model": loaded.name,
                "model_revision": loaded.revision,
                "model_source": loaded.source,
                "package_version": __version__,
                "inputs": list(galaxy.sources),
                "preprocessing": steps,
            }
            results[index] = PropertyMaps.from_arrays(
                value, sigma, mask, names=loaded.property_names, wcs=wcs, meta=meta
            )
