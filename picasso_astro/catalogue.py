"""Whole catalogues to map files: streaming, resumable, with a summary table."""

import contextlib
from pathlib import Path

from ._atomic import write_failure
from ._outputs import (
    SUMMARY_NAME,
    map_file_complete,
    map_path,
    progress_bar,
    summary_table,
    write_outcome,
    write_summary,
)
from ._run import start_run
from ._warnings import quiet_preparation
from .exceptions import PicassoInputError

__all__ = ["map_file_complete", "predict_to_files"]


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
    progress=None,
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
    progress : bool or None
        Show a progress bar; by default when a person is watching (a terminal
        or a notebook).
    on_outcome : callable, optional
        Called with each finished galaxy's summary row (a dict), e.g. to log.

    Returns
    -------
    summary : `~astropy.table.Table`
        One row per galaxy: ``index``, ``name``, ``status`` (done, failed or
        skipped), ``field``, ``file``, ``message`` and ``warnings`` (what looks
        wrong with the galaxy: not found, a star, mostly masked, larger than
        the cutout); also written to
        ``output_dir/summary.ecsv``.
    """
    if resume and overwrite:
        msg = "resume and overwrite exclude each other: resume keeps finished files"
        raise ValueError(msg)
    output_dir = Path(output_dir)
    rows = []

    def record(row):
        row = {"warnings": ""} | row
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
                if map_file_complete(path, properties):
                    # Kept, never failed: a rerun must not turn done into failed.
                    message = "output exists and is complete" + (
                        "" if resume else "; overwrite (--overwrite) replaces it"
                    )
                    record(row | {"status": "skipped", "message": message})
                    continue
                if not resume:
                    message = (
                        f"{path} exists but is incomplete or damaged; use resume "
                        "(--resume) to redo it or overwrite (--overwrite) to replace it"
                    )
                    record(row | {"status": "failed", "message": message})
                    continue
            keep.add(index)
        return keep

    outcomes, total = start_run(
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
    _make_output_dir(output_dir)
    finished = False
    try:
        with quiet_preparation(), contextlib.closing(outcomes):
            for outcome in progress_bar(outcomes, progress, total):
                write_outcome(outcome, output_dir)
                record(
                    {
                        "index": outcome.index,
                        "name": outcome.name,
                        "status": outcome.status,
                        "field": outcome.field,
                        "file": outcome.output,
                        "message": "" if outcome.error is None else str(outcome.error),
                        "warnings": "; ".join(text for _, text in outcome.warnings),
                    }
                )
        finished = True
    finally:
        # Also after an interruption: the table then says what was done so far.
        summary = summary_table(rows)
        try:
            write_summary(summary, output_dir / SUMMARY_NAME)
        except (OSError, PicassoInputError) as exc:
            # An error already on its way (an interruption) is not replaced.
            if finished:
                if isinstance(exc, OSError):
                    exc = write_failure(output_dir / SUMMARY_NAME, exc, "the summary")
                raise exc from None
    return summary


def _make_output_dir(output_dir):
    if output_dir.exists() and not output_dir.is_dir():
        msg = f"{output_dir} is a file; give a directory for the map files"
        raise PicassoInputError(msg)
    try:
        output_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        msg = f"cannot create the output directory {output_dir} ({exc}); give another"
        raise PicassoInputError(msg) from None
