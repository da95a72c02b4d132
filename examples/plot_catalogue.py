"""
Maps for a small catalogue
==========================

Predict the maps of every galaxy in a table of positions, collect totals and
gradients in a table, and write one FITS file per galaxy, as
``picasso-predict --frames ... --catalog ...`` does from a shell.
"""

# %%
# The catalogue
# -------------
# A table with ``ra`` and ``dec`` in degrees, and optionally ``name``. Here,
# three galaxies in SDSS field 4510-4-30, and one position that lies outside
# the field, to show what happens to a bad row.
import tempfile
import warnings
from pathlib import Path

import astropy.units as u
import matplotlib.pyplot as plt
import numpy as np
from astropy.table import Table

import picasso_astro
from picasso_astro.sdss import download_frames

# The first two positions are bright compact sources whose colours (z two
# magnitudes brighter than i) mark them as stars rather than galaxies:
# picasso_astro does not classify sources, and its maps of a star mean nothing.
catalogue = Table(
    {
        "name": ["star-a", "star-b", "galaxy-c", "elsewhere"],
        "ra": [200.43681677, 200.48877278, 200.50993224, 10.0],
        "dec": [36.86442291, 36.78051463, 36.73092147, 10.0],
    }
)

frames = download_frames(4510, 4, 30)

# %%
# Predict
# -------
# Each frame is decompressed once for all the galaxies in it. With
# ``on_error="skip"`` a galaxy that cannot be done is reported with a warning
# and comes back as ``None``; the others go on.
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always", picasso_astro.PicassoWarning)
    results = picasso_astro.predict(frames, targets=catalogue, on_error="skip")
for warning in caught:
    print("warning:", str(warning.message)[:110], "...")

# %%
# A table of results
# ------------------
# Totals within 8 arcsec (at an assumed z = 0.05, for illustration) and the
# gas-metallicity gradient from the radial profile.
rows = []
outdir = Path(tempfile.mkdtemp())
for row, maps in zip(catalogue, results, strict=True):
    if maps is None:
        continue
    maps.write(outdir / f"{row['name']}.fits")
    mstar = maps.total("stellar_mass", redshift=0.05, aperture=8 * u.arcsec)
    sfr = maps.total("sfr", redshift=0.05, aperture=8 * u.arcsec)
    profile = maps.radial_profile("gas_metallicity", bins=np.arange(0, 9, 2) * u.arcsec)
    slope = np.polyfit(profile["radius"].value, profile["value"].value, 1)[0]
    rows.append(
        (
            row["name"],
            np.log10(mstar.to_value(u.Msun)),
            sfr.to_value(u.Msun / u.yr),
            slope,
        )
    )
summary = Table(
    rows=rows,
    names=["name", "log_mstar", "sfr", "dOH_dr"],
    units=[None, "dex(Msun)", "Msun / yr", "1 / arcsec"],
)
summary["log_mstar"].format = ".2f"
summary["sfr"].format = ".3g"
summary["dOH_dr"].format = "+.4f"
print(summary)
print(sorted(p.name for p in outdir.iterdir()))

# %%
# The stellar-mass maps side by side
# ----------------------------------
done = [m for m in results if m is not None]
fig = plt.figure(figsize=(4 * len(done), 3.8), layout="constrained")
for k, maps in enumerate(done, start=1):
    nd = maps["stellar_mass"]
    ax = fig.add_subplot(1, len(done), k, projection=maps.wcs)
    im = ax.imshow(np.ma.masked_array(nd.data, nd.mask), origin="lower", cmap="viridis")
    fig.colorbar(im, ax=ax, label=r"log$_{10}\,\Sigma_\star$ [M$_\odot$ kpc$^{-2}$]")
    ax.set_title(maps.meta["galaxy"])
    ax.coords[0].set_axislabel("RA")
    ax.coords[1].set_axislabel("Dec")

# %%
# From a shell, the same catalogue written as ``galaxies.csv``::
#
#     picasso-predict --frames frames/ --catalog galaxies.csv -o maps/ --skip-errors
#
# prints one line per bad row and writes ``maps/<name>.fits`` for the rest.
