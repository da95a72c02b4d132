"""Planning: a catalogue split into work units, from file headers only.

A unit is all targets of one SDSS field (its frames are read once, by
whoever runs the unit) or a group of cutout galaxies (each read when its
turn comes). Planning reads headers, never pixels, so that a plan of any
length is small.
"""

import dataclasses
from dataclasses import dataclass, field

from .exceptions import PicassoInputError
from .inputs import parse_inputs
from .sdss import SDSSField, best_field_index, find_frames

__all__ = [
    "CUTOUT_TASK_SIZE",
    "FIELD_BACKGROUND_MIN",
    "FIELD_BACKGROUND_TASK_SIZE",
    "FIELD_TASK_SIZE",
    "CutoutUnit",
    "FieldUnit",
    "Outcome",
    "Plan",
    "Target",
    "plan_units",
    "split_units",
]

#: Galaxies of one field per Dask task (each task reads the field's frames).
FIELD_TASK_SIZE = 32
#: Cutout galaxies per work unit.
CUTOUT_TASK_SIZE = 16
#: Galaxies of one field from which their residual background is estimated
#: once, on the whole frames (`~picasso_astro.preprocess.field_backgrounds`),
#: rather than on each galaxy's cutout: it then costs less than the
#: cutouts' own estimates, and is the same for all of them.
FIELD_BACKGROUND_MIN = 16
#: Galaxies per Dask task of such a field when there are already tasks
#: enough for every worker: each task of the field receives its five frames
#: and their backgrounds (about 260 MB for an SDSS field) from the workers
#: that prepared them (`~picasso_astro._field_setup`), so it is split less.
FIELD_BACKGROUND_TASK_SIZE = 128


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
    warnings : list of tuple
        ``(category name, message)`` of what looks wrong with the galaxy
        (`~picasso_astro._warnings_target.target_warnings`).
    """

    index: int
    name: str
    field: str = ""
    maps: object = None
    error: Exception | None = None
    output: str = ""
    warnings: list = dataclasses.field(default_factory=list)

    @property
    def status(self):
        """str: ``"done"`` or ``"failed"``."""
        return "failed" if self.error is not None else "done"


@dataclass
class Target:
    """One galaxy in a field: its place in the input, name, position, size."""

    index: int
    name: str
    coord: object
    half_light_radius: float | None = None


@dataclass
class FieldUnit:
    """All targets (`Target`) of one SDSS field.

    ``field_background``: whether the residual background comes from the
    whole frames (`FIELD_BACKGROUND_MIN` galaxies or more in the field's
    part of the catalogue), kept when the unit is split or subset so that a
    galaxy's background does not depend on how the work is divided.
    """

    field: SDSSField
    targets: list = field(default_factory=list)
    field_background: bool = False

    def __len__(self):
        return len(self.targets)

    def entries(self):
        """Return ``(index, name)`` of every galaxy."""
        return [(t.index, t.name) for t in self.targets]

    def subset(self, indices):
        """Return the unit with only the galaxies whose index is in ``indices``."""
        return FieldUnit(
            self.field,
            [t for t in self.targets if t.index in indices],
            self.field_background,
        )


@dataclass
class CutoutUnit:
    """Cutout galaxies: ``(index, source)`` pairs, read when prepared."""

    galaxies: list = field(default_factory=list)

    def __len__(self):
        return len(self.galaxies)

    def entries(self):
        """Return ``(index, name)`` of every galaxy."""
        return [(index, source.name) for index, source in self.galaxies]

    def subset(self, indices):
        """Return the unit with only the galaxies whose index is in ``indices``."""
        return CutoutUnit([g for g in self.galaxies if g[0] in indices])


@dataclass
class Plan:
    """The work: names of all galaxies, units to run, and early failures."""

    names: list
    units: list
    failed: list

    @property
    def total(self):
        """int: galaxies in the plan, failed ones included."""
        return len(self.failed) + sum(len(unit) for unit in self.units)

    def select(self, keep):
        """Return the plan restricted to the galaxy indices in ``keep``."""
        units = [unit.subset(keep) for unit in self.units]
        return Plan(
            self.names,
            [unit for unit in units if len(unit)],
            [outcome for outcome in self.failed if outcome.index in keep],
        )


def _readable_fields(frames):
    """Split fields into those whose r-band header reads and the errors of the rest."""
    if isinstance(frames, dict) and all(
        isinstance(v, SDSSField) for v in frames.values()
    ):
        fields = frames
    else:
        fields = find_frames(frames)
    readable, unreadable = [], []
    for fld in fields.values():
        try:
            fld.geometry()
            readable.append(fld)
        except PicassoInputError as exc:
            unreadable.append(str(exc))
    return readable, unreadable


def plan_units(
    inputs, targets=None, *, group_size=CUTOUT_TASK_SIZE, field_background=True
):
    """Split the input into work units.

    Parameters
    ----------
    inputs
        As `~picasso_astro.predict` takes them.
    targets : `~picasso_astro.inputs.Targets` or None
        Parsed targets for frames; None for cutouts.
    group_size : int
        Cutout galaxies per unit.
    field_background : bool
        Whether fields of `FIELD_BACKGROUND_MIN` targets or more take their
        residual background from their whole frames (False when the
        background is not subtracted at all).

    Returns
    -------
    plan : `Plan`
    """
    if targets is None:
        return _plan_cutouts(inputs, group_size)
    fields, unreadable = _readable_fields(inputs)
    best = best_field_index(targets.coords, fields)
    units = [FieldUnit(fld) for fld in fields]
    failed = []
    for index, number in enumerate(best):
        name, coord = targets.names[index], targets.coords[index]
        if number < 0:
            failed.append(
                Outcome(index, name, error=_not_in_frames(name, coord, unreadable))
            )
            continue
        target = Target(index, name, coord, targets.radius(index))
        units[number].targets.append(target)
    for unit in units:
        unit.field_background = field_background and len(unit) >= FIELD_BACKGROUND_MIN
    return Plan(list(targets.names), [unit for unit in units if len(unit)], failed)


def _not_in_frames(name, coord, unreadable):
    """Return the error of a target that no readable frame holds."""
    where = f"target {name} (RA {coord.ra.deg:.5f}, Dec {coord.dec.deg:+.5f})"
    if unreadable:
        msg = (
            f"{where} lies in none of the frames that could be read, and "
            f"{len(unreadable)} field(s) could not be read at all: "
            f"{'; '.join(unreadable)}; if the target is in one of those, get its "
            "frames again, else check its coordinates"
        )
    else:
        msg = (
            f"{where} lies outside every frame given; check its coordinates or "
            "add the frames that contain it"
        )
    return PicassoInputError(msg)


def _plan_cutouts(inputs, group_size):
    names, units, failed, current = [], [], [], CutoutUnit()
    for index, galaxy in enumerate(parse_inputs(inputs)):
        if isinstance(galaxy, Exception):
            names.append(f"input {index}")
            failed.append(Outcome(index, names[-1], error=galaxy))
            continue
        names.append(galaxy.name)
        current.galaxies.append((index, galaxy))
        if len(current) >= group_size:
            units.append(current)
            current = CutoutUnit()
    if current.galaxies:
        units.append(current)
    return Plan(names, units, failed)


def split_units(units, size=FIELD_TASK_SIZE, *, workers=None):
    """Split field units of more than ``size`` galaxies into several.

    Parameters
    ----------
    units : list
    size : int
        Most galaxies of a field per unit.
    workers : int, optional
        Worker threads.  Every unit of a field that takes its background
        whole (``field_background``) receives the field's frames and their
        background, which pays only where a worker would otherwise wait:
        with at least as many units as workers, such fields are split in
        units of up to `FIELD_BACKGROUND_TASK_SIZE` galaxies, and with
        fewer, in as many pieces as give every worker work (at least
        ``size`` galaxies each).

    Returns
    -------
    units : list
    """
    enough = workers is not None and len(units) >= workers
    split = []
    for unit in units:
        limit = size
        if workers and isinstance(unit, FieldUnit) and unit.field_background:
            if enough:
                limit = max(size, FIELD_BACKGROUND_TASK_SIZE)
            else:
                # Only as many pieces as give every worker work.
                share = -(-workers // len(units))
                limit = max(size, -(-len(unit) // share))
        if isinstance(unit, FieldUnit) and len(unit) > limit:
            pieces = -(-len(unit) // limit)
            step = -(-len(unit) // pieces)
            split += [
                FieldUnit(
                    unit.field,
                    unit.targets[start : start + step],
                    unit.field_background,
                )
                for start in range(0, len(unit), step)
            ]
        else:
            split.append(unit)
    return split
