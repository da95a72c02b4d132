"""
Make mocks and train a tiny model
=================================

The whole training path in under a minute on a laptop CPU: generate mock
SDSS galaxies with per-pixel truth, train a (very) small network on them,
evaluate it against the colour-M/L baseline, and predict with it. A real
model needs tens of thousands of mocks at 256 x 256 pixels and hours on a
GPU (see :ref:`training`); this tiny one learns little, but every step is the
one used for real models.

Needs the ``[train]`` extra: ``pip install "picasso_astro[train]"``.
"""

# %%
# Mock galaxies
# -------------
# `~picasso_astro.training.mocks.write_mock_dataset` draws galaxies from
# scaling relations, lights them with stellar populations and observes them
# with a model of the SDSS camera. Galaxy ``i`` of a dataset depends only on
# the seed and ``i``. Here: 24 galaxies of 64 x 64 pixels.
import tempfile
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
from astropy.visualization import make_lupton_rgb

from picasso_astro.config import ModelConfig
from picasso_astro.training.dataset import ShardedDataset
from picasso_astro.training.evaluate import evaluate, format_table
from picasso_astro.training.mocks import write_mock_dataset
from picasso_astro.training.trainer import TrainConfig, fit

work = Path(tempfile.mkdtemp())
write_mock_dataset(work / "mocks", 24, seed=7, size=64, shard_size=24, progress=False)
mocks = ShardedDataset(work / "mocks")
names = list(mocks.attrs["property_names"])
print(len(mocks), "galaxies with truth for", ", ".join(names))

# %%
# One mock: its *g, r, i* image and four of its truth maps (log10; the floor
# where there are no stars or gas).
item = mocks[0]
g, r, i = item["images"][1:4]
fig, axes = plt.subplots(1, 5, figsize=(15, 3.2), layout="constrained")
axes[0].imshow(make_lupton_rgb(i, r, g, stretch=0.5, Q=8), origin="lower")
axes[0].set_title("mock gri")
for ax, name in zip(
    axes[1:], ["stellar_mass", "sfr", "hi", "gas_metallicity"], strict=True
):
    truth = np.ma.masked_array(
        item["truth"][names.index(name)], ~item["truth_valid"][names.index(name)]
    )
    im = ax.imshow(truth, origin="lower")
    fig.colorbar(im, ax=ax, shrink=0.85)
    ax.set_title(f"true {name}")
for ax in axes:
    ax.set_axis_off()

# %%
# Train
# -----
# Two epochs of a network of width 8 and depth 3 (the default model has width
# 32 and depth 4), on the five default properties. A quarter of the galaxies
# is held out for validation; the split is saved with the run.
result = fit(
    mocks,
    work / "run",
    train_config=TrainConfig(epochs=2, batch_size=4, val_fraction=0.25, lr=1e-3),
    model_config=ModelConfig(width=8, depth=3, name="tiny-example"),
    device="cpu",
    progress=False,
    data_description="24 mocks, 64 x 64 pixels, seed 7",
)
for record in result.history:
    print({key: record[key] for key in ("epoch", "train_loss", "val_loss")})
print(sorted(p.name for p in result.out_dir.iterdir()))

# %%
# Evaluate
# --------
# On the held-out galaxies: per-pixel RMS and bias, totals within two
# half-mass radii, the calibration of the uncertainties, and for stellar mass
# the colour-M/L relation fitted on the training galaxies. With 18 training
# galaxies and two epochs, the network does not beat it yet.
import json

split = json.loads((result.out_dir / "split.json").read_text())
metrics = evaluate(
    result.model,
    mocks,
    indices=split["val"],
    baseline_indices=split["train"],
    device="cpu",
)
print(format_table(metrics))

# %%
# Predict with the new model
# --------------------------
# ``result.model`` (or the directory ``run/model``) goes straight into
# ``predict``. The mock's images are a five-plane cube in nanomaggies. The
# model records that its training mocks were PSF-matched, so ``predict``
# matches this cube too; a cube holds no stars to measure its PSF on, so its
# FWHM is given.
import astropy.units as u
from astropy.nddata import NDData
from astropy.wcs import WCS

import picasso_astro

wcs = WCS(naxis=2)
wcs.wcs.ctype = ["RA---TAN", "DEC--TAN"]
wcs.wcs.crval = [150.0, 2.0]
wcs.wcs.crpix = [32.5, 32.5]
wcs.wcs.cdelt = [-0.396 / 3600, 0.396 / 3600]
test = mocks[split["val"][0]]
cube = NDData(test["images"], wcs=wcs, unit=u.nanomaggy)
(maps,) = picasso_astro.predict(
    cube, model=result.model, device="cpu", preprocessing={"psf_fwhm": 1.5}
)

true = test["truth"][names.index("stellar_mass")]
fig, axes = plt.subplots(1, 2, figsize=(8, 3.4), layout="constrained")
valid = test["truth_valid"][names.index("stellar_mass")]
vmin, vmax = np.percentile(true[valid], [5, 99.5])
for ax, data, title in (
    (axes[0], true, "true"),
    (axes[1], maps["stellar_mass"].data, "tiny model"),
):
    im = ax.imshow(data, origin="lower", vmin=vmin, vmax=vmax)
    ax.set_title(f"{title} stellar mass")
    ax.set_axis_off()
fig.colorbar(im, ax=axes, label=r"log$_{10}\,\Sigma_\star$ [M$_\odot$ kpc$^{-2}$]")
