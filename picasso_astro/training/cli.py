"""Command-line entry point ``picasso-train`` (extra ``[train]``)."""

import click

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


def _attach_training_commands():
    from ._cli_train import (
        evaluate_command,
        export_command,
        fit_command,
        push_command,
    )

    main.add_command(fit_command, name="fit")
    main.add_command(evaluate_command, name="evaluate")
    main.add_command(export_command, name="export")
    main.add_command(push_command, name="push")


_attach_training_commands()

if __name__ == "__main__":
    main()
