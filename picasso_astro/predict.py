"""The public `predict`: from images to `~picasso_astro.maps.PropertyMaps`."""

import itertools
import warnings
from numbers import Integral

import numpy as np

from ._inference import auto_batch_size, resolve_precision
from ._warnings import quiet_preparation
from .exceptions import PicassoInputError, PicassoWarning
from .hub import load_model
from .preprocess import _parse_targets

__all__ = ["iter_outcomes", "predict", "resolve_device", "run_network"]

#: Images larger than this on a side are processed in overlapping tiles.
DEFAULT_TILE_SIZE = 512
#: Pixels discarded at each inner tile edge, where the network sees no context.
TILE_MARGIN = 32
#: Galaxies of one field per Dask task (each task reads the field's frames).
FIELD_TASK_SIZE = 32
#: Cutout galaxies per Dask task.
CUTOUT_TASK_SIZE = 16


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


def _progress(iterable, enabled, total):
    if not enabled:
        return iterable
    from tqdm.auto import tqdm

    return tqdm(iterable, total=total, unit="galaxy", desc="picasso")


def _select(units, keep):
    from ._stream import FieldUnit, GalaxyUnit

    selected = []
    for unit in units:
        if isinstance(unit, FieldUnit):
            targets = [t for t in unit.targets if t[0] in keep]
            unit = FieldUnit(unit.field, targets)
        else:
            unit = GalaxyUnit([g for g in unit.galaxies if g[0] in keep])
        if len(unit):
            selected.append(unit)
    return selected


def iter_outcomes(
    inputs,
    *,
    targets=None,
    model=None,
    device="auto",
    batch_size="auto",
    tile_size=None,
    preprocessing=None,
    client=None,
    output_dir=None,
    select=None,
):
    """Plan the work and return a stream of per-galaxy outcomes.

    Parameters are those of `predict`, plus ``output_dir`` (Dask workers
    write the map files themselves) and ``select``, a callable
    ``select(names, properties) -> set of indices`` choosing which galaxies
    to run.

    Returns
    -------
    outcomes : iterator of `~picasso_astro._stream.Outcome`
        In the order galaxies finish.
    total : int
        How many galaxies will come.
    """
    import torch

    from ._stream import plan_units, split_units, stream_outcomes, unit_items

    _check_batch_size(batch_size)
    tile_size = DEFAULT_TILE_SIZE if tile_size is None else int(tile_size)
    if targets is None and preprocessing:
        msg = "preprocessing options apply only to frames with targets="
        raise ValueError(msg)
    loaded = load_model(model)
    parsed = _parse_targets(targets) if targets is not None else None
    names, units, failed = plan_units(inputs, parsed, group_size=CUTOUT_TASK_SIZE)
    if select is not None:
        keep = select(names, loaded.property_names)
        units = _select(units, keep)
        failed = [outcome for outcome in failed if outcome.index in keep]
    total = len(failed) + sum(len(unit) for unit in units)
    options = {
        "device": device,
        "batch_size": batch_size,
        "tile_size": tile_size,
        "preprocessing": dict(preprocessing or {}),
        "output_dir": None if output_dir is None else str(output_dir),
    }

    def local():
        torch_device = resolve_device(device)
        loaded.to(torch_device)
        loaded.network.to(memory_format=torch.channels_last)
        yield from failed
        # One stream over all fields: the next field is read while the
        # network runs on the last galaxies of the current one.
        items = itertools.chain.from_iterable(
            unit_items(unit, loaded.config, options["preprocessing"]) for unit in units
        )
        yield from stream_outcomes(
            items, loaded, torch_device, batch_size=batch_size, tile_size=tile_size
        )

    def distributed():
        from ._dask import distributed_outcomes

        yield from failed
        # Several tasks per crowded field, so that every worker has work.
        yield from distributed_outcomes(
            client, split_units(units, FIELD_TASK_SIZE), loaded, options
        )

    if client is None:
        resolve_device(device)
        return local(), total
    return distributed(), total


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
    client=None,
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
        (`~picasso_astro.preprocess.prepare_target`). Galaxies are taken
        field by field: each frame is decompressed once.
    model : str, `~pathlib.Path` or `~picasso_astro.hub.PicassoModel`, optional
        A model directory or a loaded model; the bundled default if omitted.
    device : str
        ``"auto"``, ``"cpu"`` or ``"cuda"`` (on each Dask worker with ``client``).
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
    client : `distributed.Client`, optional
        Spread the work over a Dask cluster: one task per SDSS field (or per
        group of cutouts), the model sent once to each worker; a task whose
        worker dies is run again on another.

    Returns
    -------
    maps : list of `~picasso_astro.maps.PropertyMaps` or None
        One per galaxy, in input order; None for a skipped galaxy.

    See Also
    --------
    picasso_astro.predict_to_files : for catalogues too large to keep
        in memory, writing each galaxy's file as it finishes (resumable).
    """
    if on_error not in ("raise", "skip"):
        msg = f"on_error must be 'raise' or 'skip', not {on_error!r}"
        raise ValueError(msg)
    outcomes, total = iter_outcomes(
        inputs,
        targets=targets,
        model=model,
        device=device,
        batch_size=batch_size,
        tile_size=tile_size,
        preprocessing=preprocessing,
        client=client,
    )
    results = [None] * total
    errors = []
    with quiet_preparation():
        for outcome in _progress(outcomes, progress, total):
            if outcome.error is None:
                results[outcome.index] = outcome.maps
            elif on_error == "raise":
                raise outcome.error
            else:
                errors.append(outcome.error)
    # Outside the block above, so that callers' own warning filters apply.
    for error in errors:
        warnings.warn(f"skipped: {error}", PicassoWarning, stacklevel=2)
    return results
