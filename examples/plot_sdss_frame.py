"""
Maps of a galaxy in a real SDSS frame
=====================================

Fetch the five corrected frames of one SDSS field from the SDSS Science
Archive Server, predict the property maps of a galaxy in it, and plot them on
the sky.
"""

# %%
# The frames
# ----------
# SDSS corrected frames (``frame-*.fits.bz2``) are calibrated images in
# nanomaggies, one per band. Run 4510, camcol 4, field 30 is an ordinary
# high-latitude field with several small galaxies.
# `~picasso_astro.sdss.download_frames` fetches them through astropy's download
# cache, so they are downloaded only once.

import astropy.units as u
import numpy as np
from astropy.coordinates import SkyCoord

import picasso_astro
from picasso_astro.sdss import download_frames

frames = download_frames(4510, 4, 30)
print(sorted(p.name for p in frames.iterdir()))

# %%
# Predict
# -------
# Give the frames and the galaxy's position. ``predict`` cuts the galaxy out
# of each frame, aligns the bands, prepares them as the model's training
# images were (the bundled model's were not background-subtracted or
# PSF-matched), finds the galaxy's footprint and the stars and neighbours
# around it, then runs the bundled model.
target = SkyCoord(200.50993224, 36.73092147, unit="deg")
(maps,) = picasso_astro.predict(frames, targets=target)
print(maps)

# %%
# Each map is an `~astropy.nddata.NDData` with a unit, a per-pixel
# uncertainty, a mask and the WCS of the cutout.
sigma_star = maps["stellar_mass"]
print(sigma_star.unit, sigma_star.data.shape, sigma_star.wcs.wcs.ctype)
print("pixels of the galaxy's footprint:", maps.footprint.sum())
print("flagged as stars or neighbours:", maps.flagged("star", "neighbour").sum())

# %%
# What preprocessing did, band by band, is kept with the maps:
steps = maps.meta["preprocessing"]
print(
    "PSF FWHM (arcsec):", {b: round(v, 2) for b, v in steps["psf_fwhm_arcsec"].items()}
)
print("steps run:", {k: v for k, v in steps["options"].items() if v is True})
sources = steps["source_mask"]
print("stars:", sources["n_stars"], "neighbours:", sources["n_neighbours"])
print("footprint down to", round(sources["isophote_reached"], 2), "mag/arcsec2 in r")

# %%
# Plot the maps
# -------------
# One panel per property on the sky (RA, Dec), colour bars in physical
# units; stars and neighbours are blank and the white contour is the
# galaxy's footprint.
fig = maps.plot()

# %%
# The uncertainty of each pixel is the spread of the model's distribution over
# bins of the log10 value:
fig = maps.plot(["stellar_mass", "sfr"], uncertainty=True)

# %%
# Radial profiles and totals
# --------------------------
# Azimuthal medians in annuli about the galaxy, out to 30 arcsec:
fig = maps.plot_radial_profiles(bins=np.arange(0, 30.1, 1.5) * u.arcsec)
profile = maps.radial_profile("gas_metallicity", bins=8)
print(profile["radius", "value", "error", "uncertainty"])

# %%
# Totals need the galaxy's distance. This galaxy's redshift is not part of the
# example; assume z = 0.05 to show the call (Planck18 cosmology). They sum the
# footprint: the sky and the neighbours are left out.
for name in ("stellar_mass", "sfr", "hi"):
    total = maps.total(name, redshift=0.05)
    print(f"{name:>12s} over the footprint: {total:.3g}")
