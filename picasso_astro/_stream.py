"""Galaxies as a stream: grouped by field, preprocessed ahead of the network.

A catalogue is split into work units (all targets of one SDSS field, or a
group of cutout galaxies).  A background thread prepares the next galaxies
while the network runs on the current batch; a bounded queue keeps memory
flat however long the catalogue, and each field's decompressed frames are
dropped as soon as its last galaxy is prepared.
"""

import queue
import threading
from dataclasses import dataclass, field

import numpy as np

from . import __version__
from ._inference import AUTO_BATCH_LIMIT, auto_batch_size
from .exceptions import PicassoInputError
from .maps import PropertyMaps
from .preprocess import align_bands, stack_bands, to_model_input

__all__ = [
    "FieldUnit",
    "GalaxyUnit",
    "Outcome",
    "plan_units",
    "split_units",
    "stream_outcomes",
]


@dataclass
class Outcome:
    """What happened to one galaxy.

    Attributes
    ----------
    index : int
        Position in the input.
    name : str
    field : str
        The SDSS field it was cut from ('' for cutouts).
    maps : `~picasso_astro.maps.PropertyMaps` or None
    error : Exception or None
        Why it failed.
    output : str
        The map file written, if any.
    """

    index: int
    name: str
    field: str = ""
    maps: object = None
    error: Exception | None = None
    output: str = ""

    @property
    def status(self):
        """str: ``"done"`` or ``"failed"``."""
        return "failed" if self.error is not None else "done"


@dataclass
class FieldUnit:
    """All targets of one SDSS field: ``(index, name, coord, half_light_radius)``."""

    field: object
    targets: list = field(default_factory=list)

    def __len__(self):
        return len(self.targets)


@dataclass
class GalaxyUnit:
    """Cutout galaxies: ``(index, GalaxyInput)`` pairs."""

    galaxies: list = field(default_factory=list)

    def __len__(self):
        return len(self.galaxies)


@dataclass
class _Item:
    index: int
    name: str
    field: str
    prepare: object


def _target_label(name, coord):
    if name:
        return str(name)
    return f"J{coord.ra.deg:09.5f}{coord.dec.deg:+09.5f}"


def _cutout_size(config):
    cutout = config.cutout
    if cutout.get("kind") == "half_light":
        return {"half_light_radii": float(cutout["factor"])}
    return int(cutout.get("size", 256))


def _readable_fields(frames):
    """Split fields into those whose r-band header reads and the errors of the rest."""
    from .sdss import SDSSField, find_frames

    if isinstance(frames, dict) and all(
        isinstance(v, SDSSField) for v in frames.values()
    ):
        fields = frames
    else:
        fields = find_frames(frames)
    readable, unreadable = [], []
    for fld in fields.values():
        try:
            fld._geometry()
            readable.append(fld)
        except PicassoInputError as exc:
            unreadable.append(str(exc))
    return readable, unreadable


def plan_units(inputs, targets, *, group_size):
    """Split the input into work units.

    Parameters
    ----------
    inputs
        As `~picasso_astro.predict` takes them.
    targets : tuple or None
        Parsed targets ``(coords, names, radii)`` for frames.
    group_size : int
        Cutout galaxies per unit.

    Returns
    -------
    names : list of str
        One per galaxy, in input order.
    units : list of `FieldUnit` or `GalaxyUnit`
    failed : list of `Outcome`
        Galaxies that failed before any work (unreadable, outside every frame).
    """
    if targets is None:
        return _plan_cutouts(inputs, group_size)
    from .sdss import best_field_index

    coords, names, radii = targets
    labels = [_target_label(names[i], coords[i]) for i in range(len(coords))]
    fields, unreadable = _readable_fields(inputs)
    best = best_field_index(coords, fields)
    units = [FieldUnit(fld) for fld in fields]
    failed = []
    for index, number in enumerate(best):
        coord = coords[index]
        if number < 0:
            msg = (
                f"target {labels[index]} (RA {coord.ra.deg:.5f}, "
                f"Dec {coord.dec.deg:+.5f}) lies outside every frame given; check "
                "its coordinates or add the frames that contain it"
            )
            if unreadable:
                msg += "; some frames could not be read: " + "; ".join(unreadable)
            failed.append(Outcome(index, labels[index], error=PicassoInputError(msg)))
            continue
        radius = None if radii is None else radii[index]
        units[number].targets.append((index, labels[index], coord, radius))
    return labels, [unit for unit in units if unit.targets], failed


def split_units(units, size):
    """Split field units of more than ``size`` galaxies into several."""
    split = []
    for unit in units:
        if isinstance(unit, FieldUnit) and len(unit) > size:
            pieces = -(-len(unit) // size)
            step = -(-len(unit) // pieces)
            split += [
                FieldUnit(unit.field, unit.targets[start : start + step])
                for start in range(0, len(unit), step)
            ]
        else:
            split.append(unit)
    return split


def _plan_cutouts(inputs, group_size):
    from .inputs import parse_inputs

    galaxies = parse_inputs(inputs)
    names, units, failed, current = [], [], [], GalaxyUnit()
    for index, galaxy in enumerate(galaxies):
        if isinstance(galaxy, Exception):
            names.append(f"input {index}")
            failed.append(Outcome(index, names[-1], error=galaxy))
            continue
        names.append(galaxy.name)
        current.galaxies.append((index, galaxy))
        if len(current) >= group_size:
            units.append(current)
            current = GalaxyUnit()
    if current.galaxies:
        units.append(current)
    return names, units, failed


def _cutout_model_input(galaxy, config):
    aligned = align_bands(galaxy.images)
    cube, mask = stack_bands(aligned)
    x = to_model_input(cube, mask, softening=config.softening)
    steps = {
        band: image.meta.get("reprojected_to")
        and f"reprojected onto {image.meta['reprojected_to']}"
        for band, image in aligned.items()
    }
    flux = {band: image.meta.get("flux_unit") for band, image in galaxy.images.items()}
    steps = {"alignment": steps, "flux_unit": flux}
    return x, mask, aligned["r"].wcs, steps, list(galaxy.sources)


def _field_model_input(fld, target, config, options):
    from .preprocess import prepare_target

    _, label, coord, radius = target
    target_options = dict(options)
    if target_options.get("psfield") is None:
        target_options["psfield"] = fld.psfield_data()
    prepared = prepare_target(
        fld.images(),
        coord,
        size=_cutout_size(config),
        name=label,
        half_light_radius=radius,
        **target_options,
    )
    prepared.steps["field"] = fld.name
    cube, mask = prepared.cube()
    x = to_model_input(cube, mask, softening=config.softening)
    sources = [str(fld.image(band).meta.get("file", "")) for band in "ugriz"]
    return x, mask, prepared.wcs, prepared.steps, sources


def unit_items(unit, config, options=None):
    """Yield one `_Item` per galaxy of a unit.

    A field's frames are freed once its last galaxy is prepared.
    """
    options = dict(options or {})
    if isinstance(unit, GalaxyUnit):
        for index, galaxy in unit.galaxies:
            yield _Item(
                index,
                galaxy.name,
                "",
                lambda galaxy=galaxy: _cutout_model_input(galaxy, config),
            )
        return
    fld = unit.field
    try:
        for target in unit.targets:
            yield _Item(
                target[0],
                target[1],
                fld.name,
                lambda target=target: _field_model_input(fld, target, config, options),
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
    except PicassoInputError as exc:
        return (item, None, exc)


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
    from .predict import run_network

    by_shape = {}
    for item, payload in batch:
        by_shape.setdefault(payload[0].shape, []).append((item, payload))
    for entries in by_shape.values():
        x = np.stack([payload[0] for _, payload in entries])
        values, sigmas = run_network(
            loaded.network, x, device=device, tile_size=tile_size
        )
        for (item, payload), value, sigma in zip(entries, values, sigmas, strict=True):
            _, mask, wcs, steps, sources = payload
            meta = {
                "galaxy": item.name,
                "model": loaded.name,
                "model_revision": loaded.revision,
                "model_source": loaded.source,
                "package_version": __version__,
                "inputs": sources,
                "preprocessing": steps,
            }
            maps = PropertyMaps.from_arrays(
                value, sigma, mask, names=loaded.property_names, wcs=wcs, meta=meta
            )
            yield Outcome(item.index, item.name, item.field, maps=maps)
