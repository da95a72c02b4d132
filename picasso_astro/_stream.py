"""Galaxies as a stream: prepared in a background thread ahead of the network.

A background thread prepares the next galaxies
(`~picasso_astro.preprocess.prepare_target`) while the network runs on the
current batch; a bounded queue keeps memory flat however long the catalogue.
A field's frames are read once for all its galaxies in a unit (only the rows
they need, when that gives the same maps) and dropped as soon as its last
galaxy is prepared. Whatever goes wrong with one galaxy, in preparation or in
the network, becomes that galaxy's failed `~picasso_astro._plan.Outcome`; the
others go on.
"""

import queue
import threading
from dataclasses import dataclass

import numpy as np
from astropy.coordinates import SkyCoord

from ._grid import check_pixel_scale
from ._inference import AUTO_BATCH_LIMIT, auto_batch_size, run_network
from ._package import __version__
from ._plan import CutoutUnit, Outcome
from ._warnings_target import flag_out_of_range
from ._wcs import wcslib_message
from .exceptions import PicassoInputError
from .maps import PropertyMaps
from .preprocess import (
    field_backgrounds,
    frame_read_size,
    prepare_target,
)

__all__ = ["galaxy_failure", "stream_outcomes", "unit_items"]


@dataclass
class _Item:
    index: int
    name: str
    field: str
    prepare: object


def galaxy_failure(name, exc):
    """Return the error that a galaxy's outcome carries for an exception.

    The package's own errors are kept; anything else (a library's error on
    odd input, e.g. astropy's ``NoOverlapError``) is wrapped in a
    `~picasso_astro.exceptions.PicassoInputError` that names the galaxy, with
    wcslib's C source locations left out of its text.
    """
    if isinstance(exc, PicassoInputError):
        return exc
    msg = (
        f"{name}: could not be processed ({type(exc).__name__}: {wcslib_message(exc)})"
    )
    error = PicassoInputError(msg)
    error.__cause__ = exc
    return error


def _payload(prepared, config, sources):
    flag_out_of_range(prepared, config.input_range)
    x, crop = prepared.network_input(
        softening=config.softening, multiple=2**config.depth
    )
    return x, prepared.bitmask, prepared.wcs, prepared.steps, sources, crop


def _cutout_payload(source, config, options):
    galaxy = source.load()
    check_pixel_scale(
        galaxy.images[options.reference_band], config.pixel_scale, name=galaxy.name
    )
    prepared = prepare_target(galaxy.images, options=options, name=galaxy.name)
    return _payload(prepared, config, list(galaxy.sources))


def _field_region(unit, config, options):
    """Return ``(positions, size)``: what a field unit's galaxies need of its frames.

    The frames are then read once for all of them, in part when that gives
    the same pixels (`~picasso_astro.sdss.SDSSField.images`).  A galaxy
    whose cutout size cannot be known fails in its preparation, and is left
    out here.
    """
    coords, sizes = [], []
    for target in unit.targets:
        try:
            size = frame_read_size(
                options.cutout_or(config.cutout),
                options=options,
                half_light_radius=target.half_light_radius,
            )
        except PicassoInputError:
            continue
        coords.append(SkyCoord(target.coord))
        sizes.append(size)
    if not coords:
        return None
    return SkyCoord(coords), max(sizes)


def _field_payload(fld, target, config, options, around, field_background):
    # With the field's background (estimated on whole frames) ``around`` is
    # None: the frames are read whole.
    backgrounds = field_backgrounds(fld) if field_background else None
    prepared = prepare_target(
        fld.images(around=around),
        target.coord,
        size=options.cutout_or(config.cutout),
        options=options,
        name=target.name,
        half_light_radius=target.half_light_radius,
        psfield=fld.psfield_data(),
        backgrounds=backgrounds,
    )
    prepared.steps["field"] = fld.name
    sources = [str(fld.paths[band]) for band in fld.bands]
    return _payload(prepared, config, sources)


def unit_items(unit, config, options):
    """Yield one `_Item` per galaxy of a work unit.

    Parameters
    ----------
    unit : `~picasso_astro._plan.FieldUnit` or `~picasso_astro._plan.CutoutUnit`
    config : `~picasso_astro.config.ModelConfig`
        Gives the cutout size and input scaling.
    options : `~picasso_astro.preprocess.PreparationOptions`

    A field's frames (and their background, when the unit's galaxies take
    it from the whole frames: ``unit.field_background``) are freed once its
    last galaxy is prepared.
    """
    if isinstance(unit, CutoutUnit):
        for index, source in unit.galaxies:
            yield _Item(
                index,
                source.name,
                "",
                lambda source=source: _cutout_payload(source, config, options),
            )
        return
    fld = unit.field
    field_background = unit.field_background and options.background
    around = None if field_background else _field_region(unit, config, options)
    try:
        for target in unit.targets:
            yield _Item(
                target.index,
                target.name,
                fld.name,
                lambda target=target: _field_payload(
                    fld, target, config, options, around, field_background
                ),
            )
    finally:
        # Items are prepared by the thread that iterates, one at a time: by
        # the time it asks for the next item, this field's last is done.
        fld.clear()


_DONE = object()


@dataclass
class _Crash:
    exception: BaseException


def _put(channel, entry, stop):
    while not stop.is_set():
        try:
            channel.put(entry, timeout=0.1)
            return
        except queue.Full:
            continue


def _prepared(item):
    try:
        return (item, item.prepare(), None)
    except Exception as exc:  # any failure of one galaxy is that galaxy's
        return (item, None, galaxy_failure(item.name, exc))


def _produce(items, channel, stop):
    """Prepare items one after the other; hand them on in input order.

    One thread only: astropy WCS objects and the warnings filters are not
    thread-safe, so galaxies are prepared in parallel only across processes
    (Dask workers).
    """
    try:
        for item in items:
            if stop.is_set():
                return
            _put(channel, _prepared(item), stop)
    except BaseException as exc:  # a bug, not bad input: handed to the consumer
        _put(channel, _Crash(exc), stop)
    finally:
        _put(channel, _DONE, stop)


def stream_outcomes(items, loaded, device, *, batch_size, tile_size, prefetch=2):
    """Prepare galaxies in a background thread and run them through the network.

    Parameters
    ----------
    items : iterable of `_Item`
    loaded : `~picasso_astro.hub.PicassoModel`
        Already on ``device``.
    device : `torch.device`
    batch_size : int or "auto"
        ``"auto"``: chosen from the free memory for the first galaxy's size.
    tile_size : int
    prefetch : int
        Batches prepared ahead of the network (bounds memory).

    Yields
    ------
    outcome : `Outcome`
        As each galaxy finishes (bad inputs at once, others batch by batch).
    """
    ahead = AUTO_BATCH_LIMIT if batch_size == "auto" else batch_size
    channel = queue.Queue(maxsize=max(1, prefetch * ahead))
    stop = threading.Event()
    worker = threading.Thread(
        target=_produce,
        args=(items, channel, stop),
        daemon=True,
        name="picasso-stream",
    )
    worker.start()
    batch = []
    gather = None if batch_size == "auto" else batch_size
    try:
        while True:
            entry = channel.get()
            if entry is _DONE:
                break
            if isinstance(entry, _Crash):
                raise entry.exception
            item, payload, error = entry
            if error is not None:
                yield Outcome(item.index, item.name, item.field, error=error)
                continue
            batch.append((item, payload))
            if gather is None:
                gather = auto_batch_size(loaded.network, payload[0].shape[-2:], device)
            if len(batch) >= gather:
                yield from _run_batch(batch, loaded, device, tile_size)
                batch = []
        if batch:
            yield from _run_batch(batch, loaded, device, tile_size)
    finally:
        stop.set()
        worker.join(timeout=30)


def _run_batch(batch, loaded, device, tile_size):
    by_shape = {}
    for item, payload in batch:
        by_shape.setdefault(payload[0].shape, []).append((item, payload))
    for entries in by_shape.values():
        x = np.stack([payload[0] for _, payload in entries])
        try:
            values, sigmas = run_network(
                loaded.network, x, device=device, tile_size=tile_size
            )
        except Exception as exc:  # the batch's galaxies fail, the run goes on
            for item, _ in entries:
                error = galaxy_failure(item.name, exc)
                yield Outcome(item.index, item.name, item.field, error=error)
            continue
        for (item, payload), value, sigma in zip(entries, values, sigmas, strict=True):
            yield _outcome(item, payload, value, sigma, loaded)


def _outcome(item, payload, value, sigma, loaded):
    _, bitmask, wcs, steps, sources, crop = payload
    value, sigma = value[(slice(None), *crop)], sigma[(slice(None), *crop)]
    meta = {
        "galaxy": item.name,
        "model": loaded.name,
        "model_revision": loaded.revision,
        "model_source": loaded.source,
        "package_version": __version__,
        "inputs": sources,
        "preprocessing": steps,
        "interval_95": loaded.config.intervals_95(),
    }
    try:
        maps = PropertyMaps.from_arrays(
            value,
            sigma,
            names=loaded.property_names,
            wcs=wcs,
            meta=meta,
            bitmask=bitmask,
        )
    except Exception as exc:
        return Outcome(
            item.index, item.name, item.field, error=galaxy_failure(item.name, exc)
        )
    found = list(steps.get("warnings", []))
    return Outcome(item.index, item.name, item.field, maps=maps, warnings=found)
