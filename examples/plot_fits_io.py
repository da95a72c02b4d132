"""
Write the maps to FITS and read them back
=========================================

All maps of a galaxy go into one multi-extension FITS file, with units, WCS,
uncertainties, the mask and the provenance. Any FITS tool reads it.
"""

# %%
# Maps of a galaxy in an SDSS field
# ---------------------------------
import tempfile
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
from astropy.coordinates import SkyCoord
from astropy.io import fits
from astropy.wcs import WCS

import picasso_astro
from picasso_astro.sdss import download_frames

frames = download_frames(4510, 4, 30)

target = SkyCoord(200.50993224, 36.73092147, unit="deg")
(maps,) = picasso_astro.predict(frames, targets=target)

# %%
# Write
# -----
# The file is written under a temporary name and renamed, so an interrupted
# write never leaves a broken file behind.
out = Path(tempfile.mkdtemp()) / "galaxy-maps.fits"
maps.write(out)
fits.info(out)

# %%
# The primary header holds the provenance; each image HDU its unit and WCS.
with fits.open(out) as hdulist:
    primary = hdulist[0].header
    print({key: primary[key] for key in ("GALAXY", "MODEL", "MODELREV", "PKGVERS")})
    print("inputs:", [primary[f"INPUT{k}"] for k in range(1, primary["NINPUTS"] + 1)])
    print("BUNIT of STELLAR_MASS:", hdulist["STELLAR_MASS"].header["BUNIT"])

# %%
# Read back
# ---------
back = picasso_astro.PropertyMaps.read(out)
for name in maps.names:
    assert np.array_equal(back[name].data, maps[name].data)
    assert np.array_equal(back[name].uncertainty.array, maps[name].uncertainty.array)
    assert np.array_equal(back[name].mask, maps[name].mask)
print(back)
print(
    "identical after the round trip; preprocessing recorded:",
    sorted(back.meta["preprocessing"]),
)

# %%
# Without picasso_astro
# ---------------------
# The file is plain FITS: astropy alone (or DS9, Aladin, TOPCAT) shows a map
# on the sky, with the mask from the ``MASK`` extension.
with fits.open(out) as hdulist:
    data = hdulist["SFR"].data
    masked = hdulist["MASK"].data.astype(bool)
    wcs = WCS(hdulist["SFR"].header)
    unit = hdulist["SFR"].header["BUNIT"]

fig = plt.figure(figsize=(5, 4.2), layout="constrained")
ax = fig.add_subplot(projection=wcs)
im = ax.imshow(np.ma.masked_array(data, masked), origin="lower", cmap="magma")
fig.colorbar(im, ax=ax, label=unit)
ax.set_title("SFR extension, read with astropy.io.fits")
