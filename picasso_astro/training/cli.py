"""Command-line entry point ``picasso-train`` (extra ``[train]``)."""

import click

from .._cli_ifu_options import calibration_option, drpall_option
from ..exceptions import PicassoInputError

__all__ = ["main"]


@click.group()
def main():
    """Tools to build training data and train picasso_astro models."""


@main.command()
@click.option("--n", "n", type=int, required=True, help="Number of galaxies.")
@click.option("--seed", type=int, default=0, show_default=True, help="Dataset seed.")
@click.option(
    "-o",
    "--output",
    type=click.Path(file_okay=False),
    required=True,
    help="Output directory (an interrupted run there is resumed).",
)
@click.option(
    "--size", type=int, default=256, show_default=True, help="Image side, pixels."
)
@click.option(
    "--shard-size",
    type=int,
    default=256,
    show_default=True,
    help="Galaxies per HDF5 shard.",
)
@click.option(
    "--workers", type=int, default=1, show_default=True, help="Parallel processes."
)
@click.option(
    "--background/--no-background",
    default=True,
    show_default=True,
    help="Subtract the residual background from each mock.",
)
@click.option(
    "--match-psf/--no-match-psf",
    default=True,
    show_default=True,
    help="Convolve every band to the broadest band's PSF.",
)
@click.option(
    "--mask-sources/--no-mask-sources",
    default=True,
    show_default=True,
    help="Mask stars and neighbours in the images.",
)
@click.option(
    "--population",
    type=click.Choice(["default", "shift"]),
    default="default",
    show_default=True,
    help="Population mix: 'shift' (other rates of the rare kinds) makes a test "
    "set off the training distribution.",
)
@click.option(
    "--sky-frames",
    type=click.Path(exists=True, file_okay=False),
    default=None,
    help="Directory of real SDSS frames (frame-[ugriz]-*.fits[.bz2]) to render "
    "the mocks into, instead of Gaussian sky; read in place.",
)
@click.option("--quiet", is_flag=True, help="No progress bar.")
def mocks(
    n,
    seed,
    output,
    size,
    shard_size,
    workers,
    background,
    match_psf,
    mask_sources,
    population,
    sky_frames,
    quiet,
):
    """Generate mock SDSS galaxies with truth maps into sharded HDF5 files.

    Each mock is prepared as predict prepares real galaxies (the switches
    below); the trained model records them and predict follows them.
    """
    from .mocks import write_mock_dataset

    try:
        written = write_mock_dataset(
            output,
            n,
            seed=seed,
            size=size,
            shard_size=shard_size,
            workers=workers,
            preprocessing={
                "background": background,
                "match_psf": match_psf,
                "mask_sources": mask_sources,
            },
            population=population,
            sky_frames=sky_frames,
            progress=not quiet,
        )
    except PicassoInputError as error:
        raise click.ClickException(str(error)) from None
    click.echo(
        f"{output}: {n} galaxies ({written} generated now, {n - written} resumed)"
    )


@main.command()
@click.option(
    "-o",
    "--output",
    type=click.Path(file_okay=False),
    default="example",
    show_default=True,
    help="Directory for the files.",
)
@click.option("--seed", type=int, default=1, show_default=True, help="Mock seed.")
@click.option("--size", type=int, default=128, show_default=True, help="Pixels.")
@click.option("--overwrite", is_flag=True, help="Replace existing files.")
def example(output, seed, size, overwrite):
    """Write a mock galaxy as five FITS cutouts (mock-u.fits ...) plus its truth."""
    from .example import write_example_galaxy

    try:
        paths = write_example_galaxy(output, seed=seed, size=size, overwrite=overwrite)
    except OSError as error:
        if "already exists" in str(error) and not overwrite:
            msg = f"{output}: an example already exists there; add --overwrite"
            raise click.ClickException(msg) from None
        raise click.ClickException(str(error)) from None
    for path in paths:
        click.echo(str(path))


_IFU_EXAMPLES = """
\b
Examples:
  picasso-train ifu manga-*-MAPS-HYB10-GAU-MILESHC.fits.gz --frames frames/ \\
      --drpall drpall-v3_1_1.fits -o ifu-set/
  picasso-train ifu --catalog galaxies.csv --download -o ifu-set/

A catalogue (csv, ecsv or FITS) has a column ifu (the file) and either
frames (a directory of the galaxy's SDSS frames) or run, camcol, field
(fetched from the SDSS archive with --download, into OUTPUT/frames/).
"""


@main.command(epilog=_IFU_EXAMPLES)
@click.argument("ifu_files", nargs=-1, type=click.Path(exists=True, dir_okay=False))
@click.option(
    "-o",
    "--output",
    type=click.Path(file_okay=False),
    required=True,
    help="Dataset directory (new).",
)
@click.option(
    "--frames",
    type=click.Path(exists=True),
    default=None,
    help="SDSS frame-*.fits[.bz2] files (a directory) covering the IFU galaxies.",
)
@click.option(
    "--catalog",
    type=click.Path(exists=True, dir_okay=False),
    default=None,
    help="Table of galaxies: ifu, and frames or run, camcol, field.",
)
@click.option(
    "--download", is_flag=True, help="Fetch the catalogue's fields from the SDSS SAS."
)
@click.option("--size", type=int, default=128, show_default=True, help="Pixels.")
@click.option("--shard-size", type=int, default=64, show_default=True)
@drpall_option
@calibration_option
@click.option("--background/--no-background", default=True, show_default=True)
@click.option("--match-psf/--no-match-psf", default=True, show_default=True)
@click.option("--mask-sources/--no-mask-sources", default=True, show_default=True)
@click.option("--skip-errors", is_flag=True, help="Report unusable galaxies, go on.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
def ifu(
    ifu_files,
    output,
    frames,
    catalog,
    download,
    size,
    shard_size,
    drpall,
    calibration,
    background,
    match_psf,
    mask_sources,
    skip_errors,
    quiet,
):
    """Write a training set from IFU maps (MaNGA MAPS, Pipe3D) and SDSS frames.

    Fine-tune a mock-trained model on it with picasso-train fit --init-from
    MODEL --freeze encoder; the loss uses only the pixels and properties the
    IFU measured.
    """
    from .ifu import write_ifu_dataset

    if bool(ifu_files) == bool(catalog):
        raise click.UsageError("give either IFU files (with --frames) or --catalog")
    if ifu_files and not frames:
        raise click.UsageError(
            "IFU files need --frames (the SDSS frames covering them)"
        )
    try:
        if catalog:
            galaxies = _catalog_galaxies(catalog, output, download)
        else:
            galaxies = [{"ifu": path, "frames": frames} for path in ifu_files]
        report = write_ifu_dataset(
            output,
            galaxies,
            size=size,
            shard_size=shard_size,
            preprocessing={
                "background": background,
                "match_psf": match_psf,
                "mask_sources": mask_sources,
            },
            ifu_options=_ifu_options(galaxies, drpall, calibration),
            on_error="skip" if skip_errors else "raise",
            progress=not quiet,
        )
    except PicassoInputError as error:
        raise click.ClickException(str(error)) from None
    for name, reason in report["skipped"]:
        click.echo(f"skipped {name}: {reason}", err=True)
    click.echo(f"{output}: {len(report['written'])} galaxies")


def _ifu_options(galaxies, drpall, calibration):
    """Reader options: MaNGA's only when every file is a MaNGA MAPS file."""
    from ..ifu._read import is_hdf5

    if any(is_hdf5(galaxy["ifu"]) for galaxy in galaxies):
        if drpall:
            msg = "--drpall is for MaNGA MAPS files, and Pipe3D files were given"
            raise PicassoInputError(msg)
        return {}
    return {"drpall": drpall, "calibration": calibration}


def _catalog_galaxies(path, output, download):
    """Galaxies of a catalogue: ifu and frames, or run/camcol/field to fetch."""
    from pathlib import Path

    from astropy.table import Table

    try:
        table = Table.read(
            path, format="ascii.csv" if str(path).endswith(".csv") else None
        )
    except (OSError, ValueError) as exc:
        msg = f"{path}: cannot read the catalogue ({exc})"
        raise PicassoInputError(msg) from None
    if "ifu" not in table.colnames:
        msg = f"{path}: the catalogue needs an 'ifu' column (it has {table.colnames})"
        raise PicassoInputError(msg)
    base = Path(path).parent
    galaxies = []
    for row in table:
        galaxy = {"ifu": str(base / str(row["ifu"]))}
        if "frames" in table.colnames and str(row["frames"]).strip():
            galaxy["frames"] = str(base / str(row["frames"]))
        elif all(key in table.colnames for key in ("run", "camcol", "field")):
            if not download:
                msg = (
                    f"{path}: {row['ifu']} has run, camcol, field but no frames; "
                    "add --download to fetch them (needs the internet)"
                )
                raise PicassoInputError(msg)
            from ..sdss import download_frames

            run, camcol, field = (int(row[k]) for k in ("run", "camcol", "field"))
            folder = Path(output) / "frames" / f"{run:06d}-{camcol}-{field:04d}"
            galaxy["frames"] = str(
                download_frames(run, camcol, field, directory=folder, psfield=True)
            )
        galaxies.append(galaxy)
    return galaxies


def _attach_training_commands():
    from ._cli_train import (
        calibrate_command,
        evaluate_command,
        export_command,
        fit_command,
        push_command,
    )

    main.add_command(fit_command, name="fit")
    main.add_command(evaluate_command, name="evaluate")
    main.add_command(calibrate_command, name="calibrate")
    main.add_command(export_command, name="export")
    main.add_command(push_command, name="push")


_attach_training_commands()

if __name__ == "__main__":
    main()
