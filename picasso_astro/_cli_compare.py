"""``picasso-predict compare``: predicted maps against an IFU product.

A plain click command, attached to the ``picasso-predict`` group by
`picasso_astro.cli`.
"""

import warnings
from pathlib import Path

import click

from ._cli_ifu_options import calibration_option, drpall_option
from .exceptions import AssumedPSFWarning, PicassoInputError

__all__ = ["compare_command"]

_EXAMPLES = """
\b
Examples:
  picasso-predict compare maps/7815-3702.fits \\
      manga-7815-3702-MAPS-HYB10-GAU-MILESHC.fits.gz \\
      --drpall drpall-v3_1_1.fits --plot compare.png --table compare.ecsv
  picasso-predict compare maps/NGC4047.fits NGC4047_allpix.pipe3d.hdf5
"""


@click.command("compare", epilog=_EXAMPLES)
@click.argument("maps_file", type=click.Path(exists=True, dir_okay=False))
@click.argument("ifu_file", type=click.Path(exists=True, dir_okay=False))
@click.option(
    "--properties",
    default=None,
    help="Comma-separated properties to compare (default: all both files hold).",
)
@click.option(
    "--redshift",
    type=float,
    default=None,
    help="The galaxy's redshift (MaNGA; default: --drpall, else the MAPS header).",
)
@drpall_option
@calibration_option
@click.option("--predicted-fwhm", type=float, default=None, help="Arcsec.")
@click.option("--ifu-fwhm", type=float, default=None, help="Arcsec.")
@click.option(
    "--plot",
    "plot_file",
    type=click.Path(dir_okay=False),
    default=None,
    help="Write the figure (maps side by side, predicted vs IFU) here.",
)
@click.option(
    "--table",
    "table_file",
    type=click.Path(dir_okay=False),
    default=None,
    help="Write the statistics as an ECSV table here.",
)
def compare_command(
    maps_file,
    ifu_file,
    properties,
    redshift,
    drpall,
    calibration,
    predicted_fwhm,
    ifu_fwhm,
    plot_file,
    table_file,
):
    """Compare predicted maps with IFU maps (MaNGA DAP MAPS or Pipe3D HDF5).

    Both are put on the IFU's grid and PSF; per property, the pixel bias,
    scatter and fraction inside the predicted uncertainty are printed.
    """
    from .ifu import compare
    from .ifu._read import is_hdf5

    options = {}
    if not is_hdf5(ifu_file):
        options = {"redshift": redshift, "drpall": drpall, "calibration": calibration}
    elif redshift is not None or drpall is not None:
        raise click.UsageError("--redshift and --drpall are for MaNGA MAPS files")
    names = None
    if properties:
        names = [p.strip() for p in properties.split(",") if p.strip()]
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", AssumedPSFWarning)
            result = compare(
                maps_file,
                ifu_file,
                names=names,
                predicted_fwhm=predicted_fwhm,
                ifu_fwhm=ifu_fwhm,
                ifu_options=options,
            )
    except (PicassoInputError, ImportError, TypeError) as exc:
        raise click.ClickException(str(exc)) from None
    for warning in caught:
        click.echo(f"warning: {warning.message}", err=True)
    meta = result.meta
    click.echo(
        f"{meta['galaxy']}: predicted ({meta['predicted_fwhm_arcsec']:.2f} arcsec) "
        f"vs {meta['ifu_source']} ({meta['ifu_fwhm_arcsec']:.2f} arcsec), "
        f"{meta['smoothed']} smoothed"
    )
    shown = result.table.copy()
    for key in ("bias", "mean", "scatter", "robust_scatter", "rms"):
        shown[key].info.format = ".3f"
    for key in ("inside_predicted", "inside_combined"):
        shown[key].info.format = ".2f"
    click.echo("\n".join(shown.pformat(max_width=-1, max_lines=-1)))
    for name, text in meta["calibrations"].items():
        click.echo(f"{name}: {text}")
    if table_file:
        result.table.write(table_file, format="ascii.ecsv", overwrite=True)
        click.echo(f"wrote {table_file}")
    if plot_file:
        try:
            import matplotlib

            matplotlib.use("Agg")
            figure = result.plot()
        except (ImportError, PicassoInputError) as exc:
            raise click.ClickException(str(exc)) from None
        Path(plot_file).parent.mkdir(parents=True, exist_ok=True)
        figure.savefig(plot_file, dpi=100)
        click.echo(f"wrote {plot_file}")
