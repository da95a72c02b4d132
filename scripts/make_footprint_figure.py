"""Make ``docs/_static/footprint.png``: a galaxy's footprint and masks on a real frame.

Run from the project root with the SDSS frames beside it::

    python scripts/make_footprint_figure.py [../shared/data/sdss/field-004510-4-0030]

Left: the gri cutout with the target's footprint (white), neighbours (cyan)
and stars (red); right: its stellar-mass map with the pixels that are not
the galaxy left blank. Needs matplotlib.
"""

import argparse
from pathlib import Path

import matplotlib as mpl
import numpy as np
from astropy.coordinates import SkyCoord
from astropy.visualization import make_lupton_rgb

import picasso_astro
from picasso_astro.preprocess import prepare_target
from picasso_astro.sdss import find_frames

mpl.use("Agg")
import matplotlib.pyplot as plt
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

FIELD = Path("../shared/data/sdss/field-004510-4-0030")
#: A galaxy of field 4510-4-30 with stars and neighbour galaxies around it.
GALAXY = SkyCoord(200.40198, 36.89259, unit="deg")
OUTPUT = Path("docs/_static/footprint.png")


def main():
    """Predict the galaxy's maps and draw its footprint and masks."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("field", nargs="?", type=Path, default=FIELD)
    parser.add_argument("-o", "--output", type=Path, default=OUTPUT)
    args = parser.parse_args()
    (maps,) = picasso_astro.predict(args.field, targets=GALAXY, device="cpu")
    field = next(iter(find_frames(args.field).values()))
    options = {"background": False, "match_psf": False, "mask_sources": False}
    prepared = prepare_target(field.images(), GALAXY, size=maps.shape[0], **options)
    g, r, i = (np.nan_to_num(prepared.images[band].data) for band in "gri")
    rgb = make_lupton_rgb(i, r, g, stretch=0.25, Q=8, minimum=0.0)
    ny, nx = maps.shape
    scale = 0.396
    extent = [-nx / 2 * scale, nx / 2 * scale, -ny / 2 * scale, ny / 2 * scale]
    xs = (np.arange(nx) - (nx - 1) / 2) * scale
    ys = (np.arange(ny) - (ny - 1) / 2) * scale
    plt.rcParams["hatch.linewidth"] = 0.8
    figure, (left, right) = plt.subplots(1, 2, figsize=(9, 4), layout="constrained")
    left.imshow(rgb, origin="lower", extent=extent)
    for reason, colour in (("neighbour", "cyan"), ("star", "red")):
        flagged = maps.flagged(reason).astype(float)
        if flagged.any():
            hatched = left.contourf(
                xs, ys, flagged, levels=[0.5, 1.5], colors="none", hatches=["//"]
            )
            hatched.set_edgecolor(colour)
            left.contour(xs, ys, flagged, levels=[0.5], colors=colour, linewidths=1)
    footprint = maps.footprint.astype(float)
    left.contour(xs, ys, footprint, levels=[0.5], colors="white", linewidths=1.2)
    left.set_xlabel("x offset (arcsec)")
    left.set_ylabel("y offset (arcsec)")
    left.set_title("gri image and masks", fontsize=10)
    handles = [
        Line2D([], [], color="white", lw=1.2, label="footprint"),
        Patch(facecolor="none", edgecolor="cyan", hatch="//", label="neighbour"),
        Patch(facecolor="none", edgecolor="red", hatch="//", label="star"),
    ]
    left.legend(
        handles=handles, loc="lower left", fontsize=8, facecolor="black",
        labelcolor="white", edgecolor="none", framealpha=0.6,
    )  # fmt: skip
    stellar_mass = maps["stellar_mass"]
    shown = np.where(stellar_mass.mask, np.nan, stellar_mass.data)
    image = right.imshow(shown, origin="lower", extent=extent, cmap="viridis")
    right.contour(xs, ys, footprint, levels=[0.5], colors="0.3", linewidths=0.8)
    right.set_xlabel("x offset (arcsec)")
    right.set_title("stellar mass, masked pixels blank", fontsize=10)
    colorbar = figure.colorbar(image, ax=right, shrink=0.9)
    colorbar.set_label(r"$\log_{10}\,\Sigma_*$ [M$_\odot$ kpc$^{-2}$]")
    figure.suptitle(f"{maps.meta['galaxy']} (SDSS {field.name})", fontsize=10)
    figure.savefig(args.output, dpi=100)
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
