"""Command-line entry points: ``picasso-predict``."""

import sys
import warnings
from pathlib import Path

import click

from ._cli_models import download_command, models_command
from .exceptions import PicassoInputError, PicassoModelError, PicassoWarning

__all__ = ["main", "predict_command"]

_EXAMPLES = """
\b
Examples:
  picasso-predict stamp-?-164.4311-39.0359.fits -o maps/
  picasso-predict galaxy1-*.fits galaxy2-*.fits -o maps/ --skip-errors
  picasso-predict cube.fits -o maps/ --model path/to/model --device cpu

Files of one galaxy share a name but for the band letter (u, g, r, i, z) or
carry FILTER keywords; each galaxy is written to OUTDIR/<name>.fits.
"""


@click.command(
    context_settings={"help_option_names": ["-h", "--help"]}, epilog=_EXAMPLES
)
@click.argument("cutouts", nargs=-1, required=True, type=click.Path(dir_okay=False))
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
@click.option("--batch-size", default=4, show_default=True, type=click.IntRange(min=1))
@click.option("--overwrite", is_flag=True, help="Replace existing map files.")
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
    cutouts, outdir, model, device, batch_size, overwrite, skip_errors, progress
):
    """Predict resolved property maps from five-band SDSS cutouts."""
    from .hub import load_model
    from .predict import predict

    if progress is None:
        progress = sys.stderr.isatty()
    outdir = Path(outdir)
    try:
        loaded = load_model(model)
    except PicassoModelError as exc:
        raise click.ClickException(str(exc)) from None
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", PicassoWarning)
        try:
            results = predict(
                list(cutouts),
                model=loaded,
                device=device,
                batch_size=batch_size,
                on_error="skip",
                progress=progress,
            )
        except (PicassoInputError, TypeError) as exc:
            raise click.ClickException(str(exc)) from None
    failed = 0
    for warning in caught:
        if issubclass(warning.category, PicassoWarning):
            click.echo(
                f"error: {str(warning.message).removeprefix('skipped: ')}", err=True
            )
            failed += 1
    written = 0
    for maps in results:
        if maps is None:
            continue
        path = outdir / f"{maps.meta['galaxy']}.fits"
        try:
            maps.write(path, overwrite=overwrite)
        except FileExistsError:
            click.echo(f"error: {path} exists; use --overwrite to replace it", err=True)
            failed += 1
            continue
        written += 1
        click.echo(f"wrote {path}")
    click.echo(f"{written} galaxies written, {failed} failed", err=True)
    if failed and not skip_errors:
        sys.exit(1)
    if written == 0:
        sys.exit(1)


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
    epilog=_EXAMPLES,
)
@click.version_option(package_name="picasso_astro")
def main():
    r"""Predict resolved galaxy property maps from SDSS ugriz images.

    \b
    picasso-predict CUTOUT... -o OUTDIR   (same as: picasso-predict run ...)
    """


main.add_command(predict_command, name="run")
main.add_command(models_command, name="models")
main.add_command(download_command, name="download")
