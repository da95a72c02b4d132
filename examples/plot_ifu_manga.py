"""
MaNGA maps as truth: SFR and O/H, and a comparison
===================================================

An integral-field survey measures some of the properties the network
predicts. `~picasso_astro.ifu.read_manga_maps` turns a MaNGA DAP ``MAPS``
file into `~picasso_astro.PropertyMaps` in the package's units, on the IFU's
own grid: the star-formation-rate surface density from H-alpha (dust-corrected
with the Balmer decrement, Kennicutt & Evans 2012) and the gas-phase oxygen
abundance from strong lines, with uncertainties from the DAP's inverse
variances and masks from its mask bits.

`~picasso_astro.ifu.compare` then puts predicted maps on that grid, at the
IFU's resolution, and measures bias, scatter and the fraction of pixels inside
the predicted uncertainty. Here it compares the galaxy's oxygen abundance in
two calibrations, which differ by as much as a network's errors: a comparison
must say which one it used.

The example reads ``manga-7815-3702-MAPS-HYB10-GAU-MILESHC.fits.gz`` (an
example output of the MaNGA DAP) from the project's data folder
(``../shared/data/manga``) and skips what needs it where that is absent.
"""

# %%
# Read the MAPS file
# ------------------
# The redshift (for the spaxels' physical area) comes from the MaNGA target
# table; without one, from the MAPS header.
from pathlib import Path

import astropy.units as u
import matplotlib.pyplot as plt
import numpy as np

from picasso_astro.ifu import compare, read_manga_maps

try:
    here = Path(__file__).resolve().parent
except NameError:  # run by hand in an interpreter
    here = Path.cwd()
data = here.parent.parent / "shared" / "data" / "manga"
maps_file = data / "manga-7815-3702-MAPS-HYB10-GAU-MILESHC.fits.gz"
drpall = data / "drpcomplete_v2_7_1.fits"
manga = read_manga_maps(maps_file, drpall=drpall) if maps_file.is_file() else None
if manga is None:
    print(f"{maps_file} is not here: the rest of this example is skipped")
else:
    print(manga)
    print(
        "redshift",
        round(manga.meta["redshift"], 5),
        "from",
        manga.meta["redshift_source"],
    )
    for name, text in manga.meta["calibrations"].items():
        print(f"{name}: {text}")

# %%
# Star formation and oxygen abundance
# -----------------------------------
# Spaxels without H-alpha and H-beta at S/N 3, flagged by the DAP, or with
# AGN/LINER line ratios are masked (blank).
if manga is not None:
    figure = manga.plot(uncertainty=True, ncols=2)
    z = manga.meta["redshift"]
    total = manga.total("sfr", redshift=z)
    oh = manga["gas_metallicity"]
    print(
        f"total H-alpha SFR: {total:.2f} over {manga.meta['n_spaxels']['sfr']} spaxels"
    )
    print(f"median 12 + log(O/H): {np.median(oh.data[~oh.mask]):.3f}")

# %%
# Two calibrations of O/H
# -----------------------
# The same lines through Pettini & Pagel (2004) instead of Marino et al.
# (2013): `~picasso_astro.ifu.compare` treats the first as a prediction and
# the second as truth. Both are on one grid at one resolution, so nothing is
# smoothed; the bias is the calibrations' offset.
if manga is not None:
    pp04 = read_manga_maps(maps_file, drpall=drpall, calibration="PP04")
    result = compare(
        pp04,
        manga,
        names=["gas_metallicity"],
        predicted_fwhm=manga.meta["psf_fwhm_arcsec"],
    )
    print(result.table["property", "n_pixels", "bias", "scatter", "inside_predicted"])
    result.plot()
    plt.show()

# %%
# Predictions against the IFU
# ---------------------------
# On a connected machine, predict the galaxy from the SDSS frames of its field
# and compare. The predictions are smoothed to the IFU's PSF (2.6 arcsec here)
# and resampled so that totals are kept; the statistics are per property::
#
#     from astropy.coordinates import SkyCoord
#     import picasso_astro
#     from picasso_astro.sdss import download_frames
#
#     frames = download_frames(run, camcol, field, psfield=True)  # the galaxy's field
#     target = SkyCoord(317.903202, 11.496943, unit="deg")
#     (predicted,) = picasso_astro.predict(frames, targets=target)
#     result = compare(predicted, maps_file, ifu_options={"drpall": drpall})
#     print(result.table)
#     result.plot()
#
# or, from a shell, ``picasso-predict compare maps.fits MAPS_FILE --drpall
# DRPALL --plot compare.png``. A prediction has no H-alpha: it says what the
# network infers from broad-band colours, so expect at least the scatter its
# model card reports, and mind the calibrations (the mocks' emission lines
# follow Pettini & Pagel 2004, the default here is Marino et al. 2013; pass
# ``ifu_options={"calibration": "PP04"}`` to compare like with like).
if manga is not None:
    print(
        f"IFU PSF: {manga.meta['psf_fwhm_arcsec']:.2f} arcsec; spaxel area "
        f"{manga.meta['spaxel_area_kpc2'] * u.kpc**2:.3f}"
    )
