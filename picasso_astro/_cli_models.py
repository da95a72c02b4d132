"""``picasso-predict models`` and ``picasso-predict download``.

Two plain click commands, attached to the ``picasso-predict`` group by
`picasso_astro.cli`.
"""

from pathlib import Path

import click

from ._download import resolve_cache_dir
from .exceptions import PicassoInputError, PicassoModelError
from .hub import download_model, list_models

__all__ = ["download_command", "models_command"]

_CACHE_HELP = (
    "Cache directory (default: $PICASSO_ASTRO_CACHE_DIR, else the Hugging Face cache)."
)


def _human_size(size):
    if size is None:
        return "-"
    for unit in ("B", "kB", "MB", "GB"):
        if size < 1000 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    return None  # pragma: no cover


def _progress_bar_class():
    from tqdm import tqdm

    class _FileBar(tqdm):
        """tqdm on stderr, labelled with the file name rather than its URL."""

        def __init__(self, *args, **kwargs):
            desc = kwargs.get("desc")
            if desc:
                kwargs["desc"] = str(desc).rsplit("/", 1)[-1]
            super().__init__(*args, **kwargs)

    return _FileBar


@click.command("models")
@click.option(
    "--cache-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help=_CACHE_HELP,
)
def models_command(cache_dir):
    """List models: bundled, cached, and known on the Hugging Face Hub."""
    rows = [("NAME", "WHERE", "REVISION", "SIZE", "REPOSITORY: DESCRIPTION")]
    for item in list_models(cache_dir=cache_dir):
        origin = f"{item.repo_id}: " if item.repo_id else ""
        rows.append(
            (
                item.name,
                item.location,
                (item.revision or "-")[:12],
                _human_size(item.size),
                origin + item.description,
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    for row in rows:
        cells = [cell.ljust(width) for cell, width in zip(row, widths, strict=False)]
        click.echo("  ".join([*cells, row[4]]).rstrip())
    click.echo(f"\ncache: {resolve_cache_dir(cache_dir)}")


@click.command("download")
@click.argument("name")
@click.option(
    "--revision",
    default=None,
    help="Branch, tag or commit, for a repo id (registered names are pinned).",
)
@click.option(
    "--cache-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help=_CACHE_HELP,
)
@click.option(
    "--endpoint",
    default=None,
    help="Hub address (default: $HF_ENDPOINT, else https://huggingface.co).",
)
@click.option("--quiet", is_flag=True, help="No progress bar.")
def download_command(name, revision, cache_dir, endpoint, quiet):
    """Fetch model NAME (a registered name or org/name) into the cache.

    Every file is checked against its pinned sha256; afterwards the model
    loads with no network access.
    """
    try:
        directory = download_model(
            name,
            revision=revision,
            cache_dir=cache_dir,
            endpoint=endpoint,
            progress=False if quiet else _progress_bar_class(),
        )
    except (PicassoModelError, PicassoInputError) as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"{name}: ready in {directory}")
