"""Whole catalogues to map files: streaming, resumable, with a summary table."""

import re
import warnings
from pathlib import Path

from astropy.io import fits
from astropy.table import Table

from ._atomic import atomic_path
from ._warnings import quiet_preparation
from .exceptions import PicassoInputError

__all__ = ["SUMMARY_NAME", "map_file_complete", "map_path", "predict_to_files"]

#: The summary table written beside the maps.
SUMMARY_NAME = "summary.ecsv"


def map_path(output_dir, name):
    """Return the map file of galaxy ``name`` in ``output_dir``.

    Characters that cannot be in a file name (path separators, whitespace,
    ...) become underscores.
    """
    safe = re.sub(r"[^\w.+\-]", "_", str(name)).strip(".") or "galaxy"
    return Path(output_dir) / f"{safe}.fits"


def map_file_complete(path, properties=None):
    """Return whether ``path`` is a whole, undamaged maps file.

    Parameters
    ----------
    path : str or `~pathlib.Path`
    properties : sequence of str, optional
        Properties it must hold (all those its header lists, if omitted).

    Returns
    -------
    complete : bool
        False if missing, truncated, failing its checksums, or lacking a map.
    """
    path = Path(path)
    if not path.is_file():
        return False
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            with fits.open(path, memmap=False, checksum=True) as hdulist:
                header = hdulist[0].header
                if header.get("ORIGIN") != "picasso_astro" or "PROPS" not in header:
                    return False
                listed = header["PROPS"].split(",")
                wanted = listed if properties is None else list(properties)
                if not set(wanted) <= set(listed):
                    return False
                names = ["MASK"]
                for name in listed:
                    names += [name.upper(), f"{name.upper()}_ERR"]
                if any(hdulist[name].data is None for name in names):
                    return False
    except (OSError, ValueError, KeyError, IndexError, TypeError):
        return False
    # Checksum failures and truncation are warnings in astropy, not errors.
    return not caught


def write_outcome(outcome, output_dir):
    """Write a finished galaxy's maps to its file and drop them from memory."""
    if outcome.maps is None:
        return outcome
    path = map_path(output_dir, outcome.name)
    try:
        outcome.maps.write(path, overwrite=True)
        outcome.output = str(path)
    except OSError as exc:
        outcome.error = PicassoInputError(f"{path}: could not write the maps ({exc})")
    outcome.maps = None
    return outcome


def _summary_table(rows):
    table = Table(
        rows=rows,
        names=("index", "name", "status", "field", "file", "message"),
        dtype=(int, str, str, str, str, str),
    )
    table.sort("index")
    table.meta["comments"] = [
        "picasso_astro run summary: one row per galaxy; status done, failed or "
        "skipped (its map file existed already and was complete)"
    ]
    return table


def write_summary(table, path):
    """Write the summary table atomically (ECSV)."""
    with atomic_path(path) as tmp:
        table.write(tmp, format="ascii.ecsv", overwrite=True)


def predict_to_files(
    inputs,
    output_dir,
    *,
    targets=None,
    model=None,
    device="auto",
    batch_size="auto",
    tile_size=None,
    preprocessing=None,
    client=None,
    resume=False,
    overwrite=False,
    progress=False,
    on_outcome=None,
):
    """Predict maps for a whole catalogue, writing each galaxy's file as it ends.

    Unlike `~picasso_astro.predict`, nothing is kept in memory: galaxies
    stream through (frames read once per field, the next galaxies prepared
    while the network runs), so memory stays flat however long the
    catalogue.  A run that stopped half way goes on with ``resume=True``.

    Parameters
    ----------
    inputs, targets, model, device, batch_size, tile_size, preprocessing, client
        As for `~picasso_astro.predict`.
    output_dir : str or `~pathlib.Path`
        Where ``<name>.fits`` files and the summary table go (created).
    resume : bool
        Skip galaxies whose map file exists and is complete (checksums and
        every map present); damaged files are redone.
    overwrite : bool
        Redo and replace existing map files.  Without it or ``resume``, a
        galaxy whose file exists fails (nothing is overwritten).
    progress : bool
        Show a progress bar.
    on_outcome : callable, optional
        Called with each finished galaxy's summary row (a dict), e.g. to log.

    Returns
    -------
    summary : `~astropy.table.Table`
        One row per galaxy: ``index``, ``name``, ``status`` (done, failed or
        skipped), ``field``, ``file``, ``message``; also written to
        ``output_dir/summary.ecsv``.
    """
    from .predict import _progress, iter_outcomes

    if resume and overwrite:
        msg = "resume and overwrite exclude each other: resume keeps finished files"
        raise ValueError(msg)
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    rows = []

    def record(row):
        rows.append(row)
        if on_outcome is not None:
            on_outcome(row)

    def decide(names, properties):
        """Return the indices to run; record the others (skipped or failed)."""
        keep, seen = set(), {}
        for index, name in enumerate(names):
            path = map_path(output_dir, name)
            row = {"index": index, "name": name, "field": "", "file": str(path)}
            if path in seen:
                first = names[seen[path]]
                message = (
                    f"{name}: same output file as {first} ({path.name}); "
                    "give the galaxies distinct names"
                )
                record(row | {"status": "failed", "message": message})
                continue
            seen[path] = index
            if path.exists() and not overwrite:
                if resume and map_file_complete(path, properties):
                    record(row | {"status": "skipped", "message": "output exists"})
                    continue
                if not resume:
                    message = (
                        f"{path} exists; use overwrite (--overwrite) to replace it "
                        "or resume (--resume) to keep it"
                    )
                    record(row | {"status": "failed", "message": message})
                    continue
            keep.add(index)
        return keep

    outcomes, total = iter_outcomes(
        inputs,
        targets=targets,
        model=model,
        device=device,
        batch_size=batch_size,
        tile_size=tile_size,
        preprocessing=preprocessing,
        client=client,
        output_dir=output_dir,
        select=decide,
    )
    try:
        with quiet_preparation():
            for outcome in _progress(outcomes, progress, total):
                write_outcome(outcome, output_dir)
                record(
                    {
                        "index": outcome.index,
                        "name": outcome.name,
                        "status": outcome.status,
                        "field": outcome.field,
                        "file": outcome.output,
                        "message": "" if outcome.error is None else str(outcome.error),
                    }
                )
    finally:
        # Also after an interruption: the table then says what was done so far.
        summary = _summary_table([_row_tuple(row) for row in rows])
        write_summary(summary, output_dir / SUMMARY_NAME)
    return summary


def _row_tuple(row):
    return tuple(
        row[key] for key in ("index", "name", "status", "field", "file", "message")
    )
