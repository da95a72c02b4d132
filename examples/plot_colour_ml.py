"""
Stellar mass: the network against a colour-M/L relation
=======================================================

The classic way to map stellar mass is a colour to mass-to-light (M/L)
relation applied pixel by pixel (Bell et al. 2003; Zibetti et al. 2009). Here
the network's stellar-mass map of a real SDSS galaxy is compared with the
Bell et al. (2003) relation between *g - i* colour and *i*-band M/L, on the
same preprocessed pixels.
"""

# %%
# The galaxy, as in :ref:`sphx_glr_generated_examples_plot_sdss_frame.py`
# ------------------------------------------------------------------------

import astropy.units as u
import matplotlib.pyplot as plt
import numpy as np
from astropy.coordinates import SkyCoord

import picasso_astro
from picasso_astro.preprocess import prepare_target
from picasso_astro.sdss import download_frames, find_frames

frames = download_frames(4510, 4, 30)

target = SkyCoord(200.50993224, 36.73092147, unit="deg")
(maps,) = picasso_astro.predict(frames, targets=target)

# %%
# The same preprocessed cutout, for the colours
# ---------------------------------------------
# `~picasso_astro.preprocess.prepare_target` is the step ``predict`` runs on
# each target: with the same options it gives the images the network saw
# (PSF-matched, background-subtracted, neighbours masked), on the maps' grid.
(sdss_field,) = find_frames(frames).values()
prepared = prepare_target(sdss_field.images(), target, size=maps.shape[0])
cube, mask = prepared.cube()  # (5, ny, nx) nanomaggies: u g r i z
assert prepared.wcs.wcs.compare(maps.wcs.wcs)
g, i = cube[1], cube[3]

# %%
# The colour-M/L baseline
# -----------------------
# Bell et al. (2003, Table 7): log10(M/L_i) = -0.152 + 0.518 (g - i), for
# their "diet" Salpeter IMF; subtract about 0.1 dex for a Chabrier or Kroupa
# IMF. The *i*-band surface brightness gives the luminosity surface density,
# with the Sun's absolute magnitude M_i = 4.53 (AB; Willmer 2018). No
# k-correction, dust or (1 + z)^4 dimming correction: small for a nearby
# galaxy, and the same simplifications many pixel maps make.
pixel = 0.396  # arcsec
sky = 1.4826 * np.median(np.abs(i[~mask] - np.median(i[~mask])))
use = (~mask) & (g > 5 * sky) & (i > 5 * sky)

with np.errstate(divide="ignore", invalid="ignore"):
    g_minus_i = -2.5 * np.log10(g / i)
    mu_i = 22.5 - 2.5 * np.log10(i) + 5 * np.log10(pixel)  # mag / arcsec2
    # L_sun / pc2 from mag / arcsec2 (21.572 = 5 log10(206265 arcsec / 10 pc)),
    # then per kpc2.
    log_sigma_l = 0.4 * (4.53 + 21.572 - mu_i) + 6
    log_sigma_ml = log_sigma_l + (-0.152 + 0.518 * g_minus_i) - 0.1

log_sigma_net = maps["stellar_mass"].data
print(f"{use.sum()} pixels with g and i above 5 sigma of the sky")

# %%
# Pixel by pixel
# --------------
difference = np.where(use, log_sigma_net - log_sigma_ml, np.nan)
print(
    f"median network - colour-M/L: {np.nanmedian(difference):+.2f} dex, "
    f"scatter {np.nanstd(difference):.2f} dex"
)

fig = plt.figure(figsize=(11, 4), layout="constrained")
ax1 = fig.add_subplot(1, 2, 1, projection=maps.wcs)
im = ax1.imshow(difference, origin="lower", cmap="RdBu_r", vmin=-1, vmax=1)
fig.colorbar(im, ax=ax1, label=r"network $-$ colour-M/L [dex]")
ax1.set_title(r"$\log_{10}\Sigma_\star$ difference")
ax1.coords[0].set_axislabel("RA")
ax1.coords[1].set_axislabel("Dec")

ax2 = fig.add_subplot(1, 2, 2)
ax2.scatter(
    log_sigma_ml[use],
    log_sigma_net[use],
    s=3,
    c=g_minus_i[use],
    cmap="coolwarm",
    vmin=0.5,
    vmax=1.5,
)
lims = np.nanpercentile(np.r_[log_sigma_ml[use], log_sigma_net[use]], [1, 99])
ax2.plot(lims, lims, "k--", lw=1)
ax2.set_xlabel(r"colour-M/L $\log_{10}\Sigma_\star$ [M$_\odot$ kpc$^{-2}$]")
ax2.set_ylabel(r"network $\log_{10}\Sigma_\star$ [M$_\odot$ kpc$^{-2}$]")
ax2.set_title("pixels with g, i S/N > 5 (colour: g - i)")

# %%
# Totals
# ------
# Both summed over the same pixels, at an assumed z = 0.05:
from picasso_astro.maps import PropertyMaps

ml_maps = PropertyMaps.from_arrays(
    np.where(use, log_sigma_ml, -np.inf)[None],
    np.zeros((1, *maps.shape)),
    ~use,
    names=["stellar_mass"],
    wcs=maps.wcs,
)
for label, m in (("network", maps), ("colour-M/L", ml_maps)):
    total = m.total("stellar_mass", redshift=0.05, aperture=use)
    print(f"{label:>11s}: log10 M* = {np.log10(total.to_value(u.Msun)):.2f}")

# %%
# The paper found the network's integrated stellar masses within about 0.1
# dex of the truth on mock galaxies, and M/L methods off by about 50 %.
# On a real galaxy there is no truth to compare with: a disagreement says that
# at least one of the two is wrong, not which. See :ref:`limitations`.
