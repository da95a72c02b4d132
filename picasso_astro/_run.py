"""One run: check the request, load the model, plan, and stream the outcomes.

Used by `~picasso_astro.predict` and `~picasso_astro.predict_to_files`.
Everything a user can get wrong (preparation options, targets, batch size)
is checked before the model is loaded or a frame is read.
"""

import copy
import itertools
import warnings

from ._dask import distributed_outcomes
from ._inference import DEFAULT_TILE_SIZE, check_batch_size, resolve_device
from ._options import PreparationOptions
from ._plan import CUTOUT_TASK_SIZE, FIELD_TASK_SIZE, plan_units, split_units
from ._stream import stream_outcomes, unit_items
from .exceptions import PicassoWarning
from .hub import PicassoModel, load_model
from .inputs import parse_targets

__all__ = ["preparation_for", "start_run"]


def preparation_for(loaded, overrides):
    """Return the options to prepare galaxies with for a model.

    The model's own (those it was trained with), changed by ``overrides``; a
    `~picasso_astro.exceptions.PicassoWarning` names every recorded option
    that then differs from training.

    Parameters
    ----------
    loaded : `~picasso_astro.hub.PicassoModel`
    overrides : dict
        Checked options (`PreparationOptions.check`).

    Returns
    -------
    options : `~picasso_astro.preprocess.PreparationOptions`
    """
    trained = loaded.config.preprocessing
    options = trained.replace(overrides)
    differences = options.differences(trained)
    if differences:
        listed = ", ".join(
            f"{key}={mine!r} (trained with {theirs!r})"
            for key, (mine, theirs) in differences.items()
        )
        msg = (
            f"preprocessing differs from what model {loaded.name} was trained "
            f"with: {listed}; its maps may be biased on images prepared this way"
        )
        warnings.warn(msg, PicassoWarning, stacklevel=4)
    return options


def _check_radii_used(targets, loaded, options):
    """Warn when the targets' half-light radii would be ignored."""
    if targets.half_light_radii is None:
        return
    cutout = options.cutout_or(loaded.config.cutout)
    if isinstance(cutout, dict) and cutout.get("kind") == "half_light":
        return
    msg = (
        f"the targets' half-light radii are not used: model {loaded.name} cuts "
        f"{cutout} cutouts; to size cutouts by them, pass preprocessing="
        "{'cutout': {'kind': 'half_light', 'factor': 10}}"
    )
    warnings.warn(msg, PicassoWarning, stacklevel=4)


def start_run(
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

    Parameters are those of `~picasso_astro.predict`, plus ``output_dir``
    (Dask workers write the map files themselves) and ``select``, a callable
    ``select(names, properties) -> set of indices`` choosing which galaxies
    to run.

    Returns
    -------
    outcomes : iterator of `~picasso_astro._plan.Outcome`
        In the order galaxies finish.
    total : int
        How many galaxies will come.
    """
    check_batch_size(batch_size)
    tile_size = DEFAULT_TILE_SIZE if tile_size is None else int(tile_size)
    overrides = PreparationOptions.check(preprocessing)
    parsed = parse_targets(targets) if targets is not None else None
    if client is None:
        torch_device = resolve_device(device)
    loaded = load_model(model)
    options = preparation_for(loaded, overrides)
    if parsed is not None:
        _check_radii_used(parsed, loaded, options)
    plan = plan_units(
        inputs,
        parsed,
        group_size=CUTOUT_TASK_SIZE,
        field_background=options.background,
    )
    if select is not None:
        plan = plan.select(select(plan.names, loaded.property_names))

    def local():
        import torch

        # A model the caller passed stays as it was (device, memory format).
        network = copy.deepcopy(loaded) if isinstance(model, PicassoModel) else loaded
        network.to(torch_device)
        network.network.to(memory_format=torch.channels_last)
        yield from plan.failed
        # One stream over all fields: the next field is read while the
        # network runs on the last galaxies of the current one.
        items = itertools.chain.from_iterable(
            unit_items(unit, loaded.config, options) for unit in plan.units
        )
        yield from stream_outcomes(
            items, network, torch_device, batch_size=batch_size, tile_size=tile_size
        )

    def distributed():
        yield from plan.failed
        run_options = {
            "device": device,
            "batch_size": batch_size,
            "tile_size": tile_size,
            "preparation": options,
            "output_dir": None if output_dir is None else str(output_dir),
        }
        # Several tasks per crowded field, so that every worker has work.
        workers = sum(client.nthreads().values()) or 1
        units = split_units(plan.units, FIELD_TASK_SIZE, workers=workers)
        yield from distributed_outcomes(client, units, loaded, run_options)

    return (local() if client is None else distributed()), plan.total
