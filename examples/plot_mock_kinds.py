"""
The kinds of mock galaxy beside real SDSS galaxies
==================================================

The training mocks hold rare kinds of galaxy besides ordinary ones: dusty
starbursts, post-starbursts, compact early types, bright nuclei (AGN),
mergers, edge-on dusty discs and low-surface-brightness discs
(`~picasso_astro.training.mocks.KINDS`). Here is one of each, as the model
camera sees it and with its stellar-mass and SFR truth, and then real SDSS
galaxies cut from the frames in ``../shared/data`` beside the project (the
real panels are skipped where those frames are absent, as on a user's
machine).
"""

# %%
# One mock of each kind
# ---------------------
# ``overrides={"kind": ...}`` fixes the kind; a population draws kinds at the
# rates of `~picasso_astro.training.mocks.POPULATIONS`, each cited in
# ``picasso_astro/training/mocks/_kinds.py``.
import os
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
from astropy.visualization import make_lupton_rgb

from picasso_astro.properties import PROPERTIES
from picasso_astro.training.mocks import KINDS, galaxy_seed, make_mock

names = list(PROPERTIES)


def composite(g, r, i):
    """An irg composite (Lupton et al. 2004), as SDSS colour images are made."""
    return make_lupton_rgb(i, r * 1.2, g * 1.6, minimum=-0.02, stretch=0.4, Q=8)


mocks = {
    kind: make_mock(
        galaxy_seed(2026, index),
        size=128,
        overrides={"kind": kind, "redshift": 0.04},
        field="004510-4-0030",
    )
    for index, kind in enumerate(KINDS)
}

fig, axes = plt.subplots(3, len(KINDS), figsize=(2.1 * len(KINDS), 6.6))
for column, (kind, mock) in enumerate(mocks.items()):
    p = mock.params
    g, r, i = (mock.images[band].data for band in "gri")
    axes[0, column].imshow(composite(g, r, i), origin="lower")
    axes[0, column].set_title(
        f"{kind}\nlog M*={p['log_mstar']:.1f} SFR={10 ** p['log_sfr']:.2g}",
        fontsize=8,
    )
    for row, name in ((1, "stellar_mass"), (2, "sfr")):
        k = names.index(name)
        truth = np.where(mock.truth_valid[k], mock.truth[k], np.nan)
        axes[row, column].imshow(truth, origin="lower", cmap="viridis")
axes[1, 0].set_ylabel("log Sigma* truth", fontsize=8)
axes[2, 0].set_ylabel("log Sigma_SFR truth", fontsize=8)
for ax in axes.flat:
    ax.set_xticks([])
    ax.set_yticks([])
fig.tight_layout()

# %%
# Each mock records its kind (``kind``, and one ``is_<kind>`` flag each) in
# its parameters, so that evaluation reports every kind apart:
print({kind: int(mock.params["kind"]) for kind, mock in mocks.items()})

# %%
# Real SDSS galaxies
# ------------------
# Galaxies of SDSS field 4510-4-30 (a high-latitude field; the brightest
# extended sources found by photutils segmentation), cut from the frames with
# the package's reader, at the same scale and stretch as the mocks.
shared = Path(os.environ.get("PICASSO_SHARED_DATA", Path.cwd().parents[1] / "shared"))
field = shared / "data" / "sdss" / "field-004510-4-0030"
if not field.is_dir():
    print(f"{field} is not here: the real panels are skipped")
else:
    from astropy.nddata import Cutout2D
    from photutils.segmentation import SourceCatalog, detect_sources

    from picasso_astro.sdss import read_frame

    frames = {b: read_frame(field / f"frame-{b}-004510-4-0030.fits.bz2") for b in "gri"}
    r = frames["r"]
    segments = detect_sources(r.data, 5 * np.median(r.noise), n_pixels=60)
    table = SourceCatalog(r.data, segments).to_table()
    table.sort("segment_flux", reverse=True)
    # Extended sources (wider than the PSF) with unsaturated peaks, well inside
    # the frame: galaxies (bright stars peak at tens of nanomaggies or more).
    keep = [
        row
        for row in table
        if 64 < row["x_centroid"] < r.shape[1] - 64
        and 64 < row["y_centroid"] < r.shape[0] - 64
        and row["max_value"] < 5
        and row["semimajor_axis"].value > 2.5
    ][:5]
    fig, axes = plt.subplots(1, len(keep), figsize=(2.1 * len(keep), 2.4))
    for ax, row in zip(np.atleast_1d(axes), keep, strict=True):
        position = r.wcs.pixel_to_world(row["x_centroid"], row["y_centroid"])
        cuts = [
            Cutout2D(frames[b].data, position, 128, wcs=frames[b].wcs).data
            for b in "gri"
        ]
        ax.imshow(composite(*cuts), origin="lower")
        x, y = row["x_centroid"], row["y_centroid"]
        ax.set_title(f"SDSS r-frame pixel ({x:.0f}, {y:.0f})", fontsize=8)
        ax.set_xticks([])
        ax.set_yticks([])
    fig.tight_layout()
