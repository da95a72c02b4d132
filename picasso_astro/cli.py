"""Command-line entry points: ``picasso-predict``."""

import sys
import warnings
from pathlib import Path

import click
from tqdm.auto import tqdm

from ._cli_compare import compare_command
from ._cli_models import download_command, models_command
from ._dask import local_client
from .catalogue import predict_to_files
from .exceptions import PicassoInputError, PicassoModelError, PicassoWarning
from .hub import load_model
from .inputs import parse_targets

__all__ = ["main", "predict_command"]

_EXAMPLES = """
\b
Examples:
  picasso-predict example/mock-?.fits -o maps/   (picasso-train example -o example/)
  picasso-predict --frames frames/ --catalog galaxies.csv -o maps/
  picasso-predict galaxy1-*.fits galaxy2-*.fits -o maps/ --skip-errors
  picasso-predict cube.fits -o maps/ --model path/to/model --device cpu
  picasso-predict --frames frames/ --catalog big.csv -o maps/ --resume
  picasso-predict --frames frames/ --catalog big.csv -o maps/ --workers 4
  picasso-predict --frames frames/ --catalog big.csv -o maps/ \\
      --scheduler tcp://scheduler:8786

Files of one galaxy share a name but for the band letter (u, g, r, i, z) or
carry FILTER keywords; each galaxy is written to OUTDIR/<name>.fits as it
finishes, and OUTDIR/summary.ecsv lists every galaxy as done, failed or
skipped. With --frames, each catalogue row is cut out of the frame that holds
it; frames are read once per field. --resume skips galaxies whose map file is
already complete. --workers N prepares galaxies on N cores (a local Dask
cluster); with --scheduler, fields are spread over the workers of a Dask
cluster (the workers must see the frames and OUTDIR).
"""


@click.command(
    context_settings={"help_option_names": ["-h", "--help"]}, epilog=_EXAMPLES
)
@click.argument("cutouts", nargs=-1, type=click.Path(dir_okay=False))
@click.option(
    "--frames",
    type=click.Path(exists=True),
    help="Directory (or file) of SDSS frame-*.fits[.bz2] files; needs --catalog.",
)
@click.option(
    "--catalog",
    type=click.Path(exists=True, dir_okay=False),
    help="Targets in the frames: csv, ecsv or FITS table with ra, dec [, name].",
)
@click.option(
    "-o",
    "--output-dir",
    "outdir",
    required=True,
    type=click.Path(file_okay=False),
    help="Directory for the map files (created if needed).",
)
@click.option(
    "--model",
    default=None,
    help="Model name, Hub repo id or directory (default: the bundled model).",
)
@click.option("--device", default="auto", show_default=True, help="auto, cpu or cuda.")
@click.option(
    "--batch-size",
    default="auto",
    show_default=True,
    callback=lambda ctx, param, value: _batch_size(value),
    help="Galaxies per forward pass, or auto (from the free memory).",
)
@click.option("--overwrite", is_flag=True, help="Replace existing map files.")
@click.option(
    "--resume",
    is_flag=True,
    help="Skip galaxies whose map file exists and is complete; redo the rest.",
)
@click.option(
    "--scheduler",
    default=None,
    metavar="ADDRESS",
    help="Dask scheduler address (e.g. tcp://host:8786) to spread the work over.",
)
@click.option(
    "--workers",
    default=None,
    type=click.IntRange(min=1),
    help="Start a local Dask cluster of N single-threaded worker processes.",
)
@click.option(
    "--skip-errors",
    is_flag=True,
    help="Report bad galaxies and go on; exit 0 if the rest succeed.",
)
@click.option(
    "--progress/--no-progress",
    default=None,
    help="Progress bar (default: when the terminal is interactive).",
)
def predict_command(
    cutouts,
    frames,
    catalog,
    outdir,
    model,
    device,
    batch_size,
    overwrite,
    resume,
    scheduler,
    workers,
    skip_errors,
    progress,
):
    """Predict resolved property maps from five-band SDSS cutouts or frames."""
    if bool(frames) != bool(catalog):
        raise click.UsageError("--frames and --catalog go together")
    if bool(cutouts) == bool(frames):
        raise click.UsageError("give either CUTOUT files or --frames with --catalog")
    if resume and overwrite:
        raise click.UsageError("--resume and --overwrite exclude each other")
    targets = _read_targets(catalog) if catalog else None
    if progress is None:
        progress = sys.stderr.isatty()
    try:
        loaded = load_model(model)
    except PicassoModelError as exc:
        raise click.ClickException(str(exc)) from None
    counts = {"done": 0, "failed": 0, "skipped": 0}

    def say(text):
        # Above the progress bar, not glued to it.
        if progress:
            tqdm.write(text, file=sys.stderr)
        else:
            click.echo(text, err=True)

    def report(row):
        counts[row["status"]] += 1
        if row.get("warnings"):
            say(f"warning: {row['warnings']}")
        if row["status"] == "failed":
            say(f"error: {row['message']}")
        elif row["status"] == "done" and not progress:
            click.echo(f"wrote {row['file']}")
        elif row["status"] == "skipped" and not progress:
            click.echo(f"kept {row['file']}: {row['message']}")

    if scheduler and workers:
        raise click.UsageError("--scheduler and --workers exclude each other")
    client = None
    if scheduler:
        client = _connect(scheduler)
    elif workers:
        client = _start_local_cluster(workers)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", PicassoWarning)
            predict_to_files(
                frames if frames else list(cutouts),
                outdir,
                targets=targets,
                model=loaded,
                device=device,
                batch_size=batch_size,
                client=client,
                resume=resume,
                overwrite=overwrite,
                progress=progress,
                on_outcome=report,
            )
    except (PicassoInputError, TypeError) as exc:
        raise click.ClickException(str(exc)) from None
    finally:
        if client is not None:
            client.close()
            if workers:
                client.cluster.close()
    summary = Path(outdir) / "summary.ecsv"
    written = "galaxy" if counts["done"] == 1 else "galaxies"
    click.echo(
        f"{counts['done']} {written} written, {counts['failed']} failed, "
        f"{counts['skipped']} skipped (their complete files kept); "
        f"summary in {summary}",
        err=True,
    )
    if counts["failed"] and not skip_errors:
        sys.exit(1)
    if counts["done"] == 0 and counts["skipped"] == 0:
        sys.exit(1)


def _batch_size(value):
    if value == "auto":
        return value
    try:
        number = int(value)
    except ValueError:
        number = 0
    if number < 1:
        msg = f"--batch-size must be a positive integer or auto, not {value!r}"
        raise click.BadParameter(msg)
    return number


def _start_local_cluster(workers):
    try:
        return local_client(workers)
    except ImportError:
        msg = "--workers needs Dask distributed: pip install 'picasso_astro[dask]'"
        raise click.ClickException(msg) from None


def _connect(address):
    try:
        from distributed import Client
    except ImportError:
        msg = "--scheduler needs Dask distributed: pip install 'picasso_astro[dask]'"
        raise click.ClickException(msg) from None
    try:
        return Client(address, timeout="20s")
    except (OSError, TimeoutError, ValueError) as exc:
        msg = f"could not connect to the Dask scheduler at {address}: {exc}"
        raise click.ClickException(msg) from None


def _read_targets(path):
    try:
        return parse_targets(path)
    except PicassoInputError as exc:
        raise click.ClickException(str(exc)) from None


# Click keeps the lines after a line holding only a backspace (\b) as written.
_MAIN_HELP = """Predict resolved galaxy property maps from SDSS ugriz images.

\b
picasso-predict CUTOUT... -o OUTDIR   (same as: picasso-predict run ...)
picasso-predict run --help            (every option of a run)
picasso-predict compare MAPS IFU_FILE (predictions against MaNGA/Pipe3D maps)
"""


class _DefaultToPredict(click.Group):
    """A group whose first argument, unless it names a subcommand, is an input."""

    default_command = "run"
    _own_options = ("-h", "--help", "--version")

    def parse_args(self, ctx, args):
        """Route ``picasso-predict FILE...`` to the ``run`` subcommand."""
        if args and args[0] not in self.commands and args[0] not in self._own_options:
            args = [self.default_command, *args]
        return super().parse_args(ctx, args)


@click.group(
    cls=_DefaultToPredict,
    context_settings={"help_option_names": ["-h", "--help"]},
    help=_MAIN_HELP,
    epilog=_EXAMPLES,
)
@click.version_option(package_name="picasso_astro")
def main():
    """Predict resolved galaxy property maps from SDSS ugriz images."""


main.add_command(predict_command, name="run")
main.add_command(models_command, name="models")
main.add_command(download_command, name="download")
main.add_command(compare_command, name="compare")
