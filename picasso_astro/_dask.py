"""Work units run on Dask distributed workers.

Each unit (one SDSS field, or a group of cutouts) is one task.  A field
whose galaxies take their background from its whole frames has each band
prepared once, as a task of its own (`~picasso_astro._field_setup`), for
all the field's units.  The model travels once to every worker (scattered,
replicated) and is built once per worker process; each task returns one
`~picasso_astro._plan.Outcome` per galaxy.  A worker that dies takes its
running task with it: the scheduler runs it again elsewhere, and only a unit
that kills workers repeatedly is reported as failed, galaxy by galaxy.
"""

import hashlib

from ._field_setup import adopt_bands, prepare_band
from ._inference import resolve_device
from ._outputs import write_outcome
from ._plan import FieldUnit, Outcome
from ._stream import stream_outcomes, unit_items
from ._warnings import quiet_preparation
from .config import ModelConfig
from .exceptions import PicassoInputError
from .hub import PicassoModel
from .images import BANDS

__all__ = ["distributed_outcomes", "local_client"]

#: Models built in this (worker) process, by weights digest and device.
_WORKER_MODELS = {}


def model_payload(loaded):
    """Return ``(digest, (config dict, safetensors bytes))`` for shipping a model."""
    from safetensors.torch import save

    state = {
        key: value.detach().cpu().contiguous()
        for key, value in loaded.network.state_dict().items()
    }
    weights = save(state)
    digest = hashlib.sha256(weights).hexdigest()
    return digest, (loaded.config.to_dict(), loaded.source, weights)


def _worker_model(digest, payload, device):
    import torch
    from safetensors.torch import load

    key = (digest, str(device))
    if key not in _WORKER_MODELS:
        config_dict, source, weights = payload
        config = ModelConfig.from_dict(config_dict, source=source)
        network = config.build_network()
        network.load_state_dict(load(weights))
        network.eval()
        torch_device = resolve_device(device)
        loaded = PicassoModel(network, config, source=source).to(torch_device)
        loaded.network.to(memory_format=torch.channels_last)
        _WORKER_MODELS[key] = (loaded, torch_device)
    return _WORKER_MODELS[key]


def run_band(sdss_field, band):
    """Prepare one band of a field on a worker (`~picasso_astro._field_setup`)."""
    with quiet_preparation():
        return prepare_band(sdss_field, band)


def run_unit(unit, digest, payload, options, bands=None):
    """Run one work unit on a worker; return its outcomes.

    Parameters
    ----------
    unit : `~picasso_astro._plan.FieldUnit` or `~picasso_astro._plan.CutoutUnit`
    digest : str
        The weights' SHA-256, key of the per-worker model cache.
    payload : tuple
        From `model_payload`.
    options : dict
        ``device``, ``batch_size``, ``tile_size``, ``preparation`` (a
        `~picasso_astro.preprocess.PreparationOptions`), ``output_dir``.
    bands : list, optional
        The `run_band` results of the unit's field, when its galaxies take
        their background from the whole frames.

    Returns
    -------
    outcomes : list of `~picasso_astro._plan.Outcome`
        With maps, or with ``output`` set and no maps when writing files.
    """
    loaded, device = _worker_model(digest, payload, options["device"])
    if bands:
        adopt_bands(unit.field, bands)
    items = unit_items(unit, loaded.config, options["preparation"])
    outcomes = []
    stream = stream_outcomes(
        items,
        loaded,
        device,
        batch_size=options["batch_size"],
        tile_size=options["tile_size"],
    )
    with quiet_preparation():
        for outcome in stream:
            if options["output_dir"] is not None:
                write_outcome(outcome, options["output_dir"])
            outcomes.append(outcome)
    return outcomes


def _unit_label(unit):
    field = getattr(unit, "field", None)
    return f"field {field.name}" if field is not None else "a group of cutouts"


def _unit_failed(unit, error):
    field = unit.field.name if isinstance(unit, FieldUnit) else ""
    return [Outcome(index, name, field, error=error) for index, name in unit.entries()]


def _error_for(unit, exc):
    from distributed import KilledWorker

    if isinstance(exc, KilledWorker):
        msg = (
            f"{_unit_label(unit)}: the Dask workers running it died repeatedly "
            f"({exc}); it was given up.  Check the workers' memory and logs"
        )
    else:
        reason = f"{type(exc).__name__}: {exc}"
        msg = f"{_unit_label(unit)} failed on a Dask worker: {reason}"
    return PicassoInputError(msg)


def distributed_outcomes(client, units, loaded, options, *, in_flight=None):
    """Run units on a Dask cluster and yield outcomes as they come back.

    Parameters
    ----------
    client : `distributed.Client`
    units : list
        Work units from `~picasso_astro._plan.plan_units`.
    loaded : `~picasso_astro.hub.PicassoModel`
    options : dict
        See `run_unit`.
    in_flight : int, optional
        Units submitted at a time (default: twice the workers' threads), so
        that a catalogue of any length needs bounded memory.

    Yields
    ------
    outcome : `~picasso_astro._plan.Outcome`
    """
    from distributed import as_completed

    if in_flight is None:
        threads = sum(client.nthreads().values()) or 1
        in_flight = 2 * threads
    digest, payload = model_payload(loaded)
    [payload_future] = client.scatter([payload], broadcast=True, hash=False)
    pending = iter(units)
    running = {}
    shared = _SharedBands(client, units, options)

    def submit_next():
        unit = next(pending, None)
        if unit is None:
            return False
        future = client.submit(
            run_unit,
            unit,
            digest,
            payload_future,
            options,
            shared.for_unit(unit),
            pure=False,
            **shared.placement(unit),
        )
        running[future.key] = (future, unit)
        completed.add(future)
        return True

    completed = as_completed()
    for _ in range(in_flight):
        if not submit_next():
            break
    try:
        for future in completed:
            _, unit = running.pop(future.key)
            try:
                outcomes = future.result()
            except Exception as exc:  # any task failure is reported per galaxy
                outcomes = _unit_failed(unit, _error_for(unit, exc))
            future.release()
            shared.done(unit)
            yield from outcomes
            submit_next()
    finally:
        # Stopped early (an error raised, or the caller gave up): nothing
        # should go on running for nobody.
        client.cancel([future for future, _ in running.values()])
        running.clear()
        shared.release()
        payload_future.release()


#: Dask priority of the `run_band` tasks (units have 0).
BAND_PRIORITY = 1


def _shares_bands(unit, options):
    return (
        isinstance(unit, FieldUnit)
        and unit.field_background
        and options["preparation"].background
    )


def _field_key(unit):
    return tuple(sorted((band, str(path)) for band, path in unit.field.paths.items()))


class _SharedBands:
    """The `run_band` tasks of fields whose galaxies share them.

    Each band of such a field is one task, submitted with the field's first
    unit and released after its last.  The units of a field split for
    several workers (`~picasso_astro._plan.split_units`) go to different
    workers, each with the whole field's bands.
    """

    def __init__(self, client, units, options):
        self._client = client
        self._options = options
        self._units = {}
        for unit in units:
            if _shares_bands(unit, options):
                key = _field_key(unit)
                self._units[key] = self._units.get(key, 0) + 1
        self._left = dict(self._units)
        self._futures = {}
        self._placed = {}
        self._turn = -1
        self._workers = sorted(client.nthreads()) if self._left else []

    def for_unit(self, unit):
        """Return the band futures of the unit's field (None if it has none)."""
        if not _shares_bands(unit, self._options):
            return None
        key = _field_key(unit)
        if key not in self._futures:
            self._futures[key] = [
                self._client.submit(
                    run_band,
                    unit.field,
                    band,
                    pure=False,
                    priority=BAND_PRIORITY,
                    **self._next_worker(),
                )
                for band in BANDS
            ]
        return self._futures[key]

    def _next_worker(self):
        # Bands go to the workers in turn.  Placed, they are also sent to
        # their worker at once rather than held in the scheduler's queue
        # (as tasks without dependencies are) until a worker is idle: each
        # worker then runs its bands before any unit (`BAND_PRIORITY`), and
        # a band never waits for a whole unit of another field to finish.
        self._turn += 1
        return self._loosely_on(self._turn)

    def _loosely_on(self, turn):
        """Return ``submit`` keywords preferring the ``turn``-th worker."""
        if not self._workers:
            return {}
        worker = self._workers[turn % len(self._workers)]
        return {"workers": [worker], "allow_other_workers": True}

    def placement(self, unit):
        """Return ``submit`` keywords spreading a split field's units over workers."""
        if not _shares_bands(unit, self._options):
            return {}
        key = _field_key(unit)
        if self._units[key] < 2:
            return {}
        turn = self._placed.get(key, 0)
        self._placed[key] = turn + 1
        return self._loosely_on(turn)

    def done(self, unit):
        """Count a unit finished; release its field's bands after the last."""
        if not _shares_bands(unit, self._options):
            return
        key = _field_key(unit)
        self._left[key] -= 1
        if self._left[key] == 0:
            for future in self._futures.pop(key, []):
                future.release()

    def release(self):
        """Release every band still held (a run stopped early)."""
        for futures in self._futures.values():
            self._client.cancel(futures)
        self._futures.clear()


def local_client(n_workers):
    """Start a `distributed.LocalCluster` of single-threaded workers, one per core.

    Dask's nannies give workers ``MALLOC_TRIM_THRESHOLD_=65536``, which makes
    every large temporary array cost fresh memory pages (preprocessing ran
    1.5 to 2 times slower); these workers start without it.

    Parameters
    ----------
    n_workers : int

    Returns
    -------
    client : `distributed.Client`
        Its ``cluster`` is the `distributed.LocalCluster`, to close after it.
    """
    import dask
    from distributed import Client, LocalCluster

    environ = dict(dask.config.get("distributed.nanny.pre-spawn-environ"))
    environ.pop("MALLOC_TRIM_THRESHOLD_", None)
    with dask.config.set({"distributed.nanny.pre-spawn-environ": environ}):
        cluster = LocalCluster(
            n_workers=int(n_workers),
            threads_per_worker=1,
            processes=True,
            dashboard_address=":0",
        )
    return Client(cluster)
