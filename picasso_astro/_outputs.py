"""Map files of a run: names, completeness, atomic writes, the summary table."""

import re
import sys
import warnings
from pathlib import Path

from astropy.io import fits
from astropy.table import Table

from ._atomic import atomic_path, write_failure
from .exceptions import PicassoInputError

__all__ = [
    "SUMMARY_NAME",
    "interactive",
    "map_file_complete",
    "map_path",
    "progress_bar",
    "summary_table",
    "write_outcome",
    "write_summary",
]

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
    except PicassoInputError as exc:
        outcome.error = exc
    outcome.maps = None
    return outcome


#: The summary table's columns.
SUMMARY_COLUMNS = ("index", "name", "status", "field", "file", "message", "warnings")


def summary_table(rows):
    """Return the summary table of a run from its rows (dicts), in input order."""
    table = Table(
        rows=[tuple(row[key] for key in SUMMARY_COLUMNS) for row in rows],
        names=SUMMARY_COLUMNS,
        dtype=(int, str, str, str, str, str, str),
    )
    table.sort("index")
    table.meta["comments"] = [
        "picasso_astro run summary: one row per galaxy; status done, failed or "
        "skipped (its map file existed already and was complete)"
    ]
    return table


def write_summary(table, path):
    """Write the summary table atomically (ECSV).

    Raises
    ------
    PicassoInputError
        If it cannot be written (`~picasso_astro._atomic.write_failure`).
    """
    try:
        with atomic_path(path) as tmp:
            table.write(tmp, format="ascii.ecsv", overwrite=True)
    except OSError as exc:
        raise write_failure(path, exc, "the summary") from None


def interactive():
    """Return whether a person is watching: a terminal, or a Jupyter kernel."""
    return "ipykernel" in sys.modules or sys.stderr.isatty()


def progress_bar(iterable, enabled, total):
    """Wrap ``iterable`` in a tqdm progress bar of ``total`` galaxies if enabled.

    ``enabled=None`` shows one when `interactive`.
    """
    if enabled is None:
        enabled = interactive()
    if not enabled:
        return iterable
    from tqdm.auto import tqdm

    return tqdm(iterable, total=total, unit="galaxy", desc="picasso")
