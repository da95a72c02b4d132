"""Masks and footprints of real galaxies: what the maps count as the galaxy.

For each galaxy below (real SDSS galaxies, each checked by eye on a gri
cutout), ``picasso_astro.predict`` runs with the bundled model and its
default preprocessing, and one line per galaxy gives:

* ``unmasked``: other sources (stars or galaxies, not the target) brighter
  than r = 21 whose peak pixel lies in the 128-pixel cutout *and* inside the
  target's footprint, i.e. counted as part of the galaxy (target: 0). The
  sources are found independently of the package: photutils
  ``detect_sources`` + ``deblend_sources`` on the r-band frame itself (no
  package preprocessing), magnitudes m = 22.5 - 2.5 log10(flux / nmgy) from
  the deblended segments, the segment under the target dropped.
  ``bright`` is how many such sources the cutout holds in all.
  ``faint`` counts those with 21 <= r < 23 in the footprint (no target).
* ``offset``: pixels from the target's position to the brightest
  ``stellar_mass`` pixel among the unmasked ones (target: <= 3), and in
  brackets how far that peak rises above the target's own pixel, in dex
  (a few hundredths: a flat top, whose maximum lies anywhere on it).
* ``sum``: whether ``maps.total("stellar_mass", redshift=0.03)`` equals the
  sum over the footprint pixels done here (relative difference), and
  ``+sky``: what the sky pixels would add, ``total(footprint=False)`` over
  ``total()`` minus 1.
* the footprint's area in pixels, the fractions of the cutout flagged STAR,
  NEIGHBOUR, SKY, OFF_IMAGE and LOW_SN, and the categories of the
  ``PicassoWarning`` given for the galaxy.

An edge check follows: a position 66 pixels from the left edge of field
4510 (its 128-pixel cutout lies wholly on the r frame, on blank sky, so a
``TargetNotFoundWarning`` there is expected), whose fraction
flagged OFF_IMAGE is printed with the default preprocessing and with every
step on (background, PSF matching, source masking; target: <= 2 %). The
last line says how many galaxies meet each target. The whole run takes
about half a minute on a CPU.

Run from the project root::

    PYTHONPATH=. python benchmarks/bench_masks.py [path/to/sdss] [--verbose]

``path/to/sdss`` holds the ``field-*`` folders (``../shared/data/sdss``
relative to the project root by default); ``--verbose`` lists each
unmasked source.
"""

import argparse
import sys
import time
import warnings
from pathlib import Path

import astropy.units as u
import numpy as np
from astropy.coordinates import SkyCoord
from astropy.cosmology import default_cosmology
from astropy.nddata import Cutout2D
from astropy.stats import sigma_clipped_stats
from astropy.wcs.utils import proj_plane_pixel_area
from scipy import ndimage

import picasso_astro
from picasso_astro import sdss

DEFAULT = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "sdss"

#: (field folder, RA, Dec, note): galaxies checked by eye on gri cutouts.
#: The Galactic-plane field 005405-6-0099 has none: its extended detections
#: are blends of stars.
GALAXIES = [
    ("field-004510-4-0030", 200.50993, 36.73092,
     "r=16.5 elliptical; compact galaxy (r=18.4) 18\" N, edge-on disc 13\" NW"),
    ("field-004510-4-0030", 200.44823, 36.76827,
     "r=17.3 inclined early-type disc, isolated"),
    ("field-004510-4-0030", 200.51236, 36.74792,
     "r=17.3 galaxy; red star (r=19.1, r-i=1.5) 4\" NE"),
    ("field-004510-4-0030", 200.50648, 36.73344,
     "r=18.9 edge-on disc in the halo of the r=16.5 elliptical 13\" SE"),
    ("field-004510-4-0030", 200.51024, 36.73580,
     "r=18.4 compact round galaxy 18\" N of the r=16.5 elliptical"),
    ("field-004510-4-0030", 200.45330, 36.88813,
     "r=18.9 thin edge-on disc, isolated"),
    ("field-004510-4-0030", 200.46854, 36.84663,
     "r=18.6 small disc; red star (r=22.2, r-i=1.4) 3\" S, edge-on 14\" E"),
    ("field-004510-4-0030", 200.47331, 36.83814,
     "r=18.6 small elongated galaxy; compact source (r=20.6) 10\" W"),
    ("field-004510-4-0030", 200.51062, 36.86712,
     "r=18.5 bulge with a faint disc or arms"),
    ("field-004510-4-0030", 200.40198, 36.89259,
     "r=18.5 small galaxy; red star (r=20.8, r-i=1.1) 7\" N"),
    ("field-004510-4-0030", 200.47921, 36.71234,
     "r=19.0 small faint galaxy, isolated"),
    ("field-004510-4-0030", 200.53506, 36.75982,
     "r=18.9 small elongated galaxy; faint knot (r=22.4) 5\" SE"),
    ("field-004510-4-0030", 200.48789, 36.71517,
     "r=18.8 compact galaxy"),
    ("field-004510-4-0030", 200.53654, 36.87953,
     "r=18.7 compact round galaxy, isolated"),
    ("field-002583-2-0136", 323.38058, -0.68248,
     "r=18.5 edge-on disc (M2 field); galaxies 18\" NW and NE"),
    ("field-002583-2-0136", 323.37657, -0.66708,
     "r=19.1 galaxy (M2 field); companion galaxy (r=19.2) 13\" NE"),
    ("field-002583-2-0136", 323.27166, -0.70302,
     "r=17.6 inclined disc (M2 field); stars 8\" NE and 15\" NW (r=16.7)"),
]  # fmt: skip

#: The edge check: r-frame pixel (x, y) of field 4510, 66 px from the left edge.
EDGE_FIELD, EDGE_PIXEL = "field-004510-4-0030", (66.0, 744.0)
ALL_STEPS = {"background": True, "match_psf": True, "mask_sources": True}

BRIGHT = 21.0  # r magnitude of the "other sources" counted
FAINT = 23.0  # fainter ones, up to this, are listed apart (not a target)
MAX_OFFSET = 3.0  # pixels
MAX_OFF_IMAGE = 0.02
REDSHIFT = 0.03
PAD = 32  # frame pixels around the cutout, so that sources at its edge are whole


def _field(folder):
    return next(iter(sdss.find_frames(folder).values()))


def _predict(folder, coords, preprocessing=None):
    """Maps of each galaxy and the warning categories given for each."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        maps = picasso_astro.predict(
            folder, targets=coords, device="cpu", preprocessing=preprocessing
        )
    found = [[] for _ in maps]
    for w in caught:
        if not issubclass(w.category, picasso_astro.PicassoWarning):
            continue
        text = str(w.message)
        hits = [i for i, m in enumerate(maps) if m.meta["galaxy"] in text]
        for i in hits or range(len(maps)):
            found[i].append(w.category.__name__)
    return maps, found


def other_sources(frame, coord, npix, *, nsigma=1.5, npixels=5):
    """Sources on the r frame around ``coord``, found without the package.

    Returns the sky positions of each source's peak pixel (smoothed image),
    their r magnitudes, and the index of the target's source (or None).
    """
    from photutils.segmentation import (
        SourceCatalog,
        deblend_sources,
        detect_sources,
        make_2dgaussian_kernel,
    )

    x, y = frame.wcs.world_to_pixel(coord)
    size = npix + 2 * PAD
    cut = Cutout2D(
        frame.data, (float(x), float(y)), size, wcs=frame.wcs,
        mode="partial", fill_value=np.nan,
    )  # fmt: skip
    data = cut.data.astype(float)
    bad = ~np.isfinite(data)
    _, median, std = sigma_clipped_stats(data[~bad], sigma=3.0)
    data = np.where(bad, 0.0, data - median)
    kernel = make_2dgaussian_kernel(3.0, size=7).array
    smoothed = ndimage.convolve(data, kernel, mode="constant")
    segm = detect_sources(smoothed, nsigma * std, npixels, mask=bad)
    if segm is None:
        return SkyCoord([], [], unit="deg"), np.array([]), None
    segm = deblend_sources(
        smoothed, segm, npixels, n_levels=32, contrast=0.001, progress_bar=False
    )
    cat = SourceCatalog(data, segm)
    flux = np.asarray(cat.segment_flux, float)
    mags = 22.5 - 2.5 * np.log10(np.clip(flux, 1e-12, None))
    peaks = ndimage.maximum_position(smoothed, segm.data, cat.labels)
    py, px = np.array(peaks, float).T
    sky = cut.wcs.pixel_to_world(px, py)
    tx, ty = cut.wcs.world_to_pixel(coord)
    it, ix = int(np.rint(ty)), int(np.rint(tx))
    label = segm.data[it, ix]
    if label == 0:  # the nearest source within 3 px
        dist = np.hypot(px - tx, py - ty)
        target = int(np.argmin(dist)) if dist.min() <= 3 else None
    else:
        target = int(np.nonzero(cat.labels == label)[0][0])
    return sky, mags, target


def measure(maps, frame, coord):
    """The figures of one galaxy's maps."""
    out = {}
    ny, nx = maps.shape
    fp = maps.footprint
    sky, mags, target = other_sources(frame, coord, max(ny, nx))
    unmasked, faint = [], []
    n_bright = 0
    if len(mags):
        px, py = maps.wcs.celestial.world_to_pixel(sky)
        ix, iy = np.rint(px).astype(int), np.rint(py).astype(int)
        for k in range(len(mags)):
            inside = 0 <= ix[k] < nx and 0 <= iy[k] < ny
            if k == target or mags[k] >= FAINT or not inside:
                continue
            n_bright += mags[k] < BRIGHT
            if fp[iy[k], ix[k]]:
                (unmasked if mags[k] < BRIGHT else faint).append(
                    (ix[k], iy[k], mags[k])
                )
    out["n_bright"] = n_bright
    out["unmasked"] = unmasked
    out["faint"] = faint
    out["target_found_here"] = target is not None

    tx, ty = (float(v) for v in maps.wcs.celestial.world_to_pixel(coord))
    out["centre"] = (tx, ty)
    nd = maps["stellar_mass"]
    good = ~np.asarray(nd.mask, bool) & np.isfinite(nd.data)
    if good.any():
        data = np.where(good, nd.data, -np.inf)
        py, px = np.unravel_index(np.argmax(data), data.shape)
        out["offset"] = float(np.hypot(px - tx, py - ty))
        out["peak"] = (int(px), int(py))
        # How flat the top is: the peak's excess over the target's pixel.
        out["dmax"] = float(nd.data[py, px] - nd.data[round(ty), round(tx)])
    else:
        out["offset"] = out["dmax"] = np.nan
        out["peak"] = None

    total = maps.total("stellar_mass", redshift=REDSHIFT)
    with_sky = maps.total("stellar_mass", redshift=REDSHIFT, footprint=False)
    pixel = np.sqrt(proj_plane_pixel_area(maps.wcs.celestial)) * u.deg
    cosmo = default_cosmology.get()
    kpc = (pixel.to(u.rad).value * cosmo.angular_diameter_distance(REDSHIFT)).to(u.kpc)
    use = fp & np.isfinite(nd.data)
    mine = np.power(10.0, nd.data[use].astype(np.float64)).sum() * kpc.value**2
    out["total"] = total.to_value(u.solMass)
    out["sum_rel"] = (
        abs(out["total"] - mine) / mine if mine > 0 else float(out["total"] != 0)
    )
    out["sky_adds"] = (
        with_sky.to_value(u.solMass) / out["total"] - 1 if out["total"] else np.nan
    )
    out["area"] = int(fp.sum())
    for bit in ("STAR", "NEIGHBOUR", "SKY", "OFF_IMAGE", "LOW_SN"):
        out[bit] = float(maps.flagged(bit).mean())
    return out


def _line(i, gal, res, warned):
    field, ra, dec, _ = gal
    warn = ",".join(sorted(set(warned))) or "-"
    ok = "" if res["target_found_here"] else " (target not found here)"
    return (
        f"{i:2d} {field[6:12]} {ra:9.5f} {dec:+9.5f} "
        f"unmasked {len(res['unmasked'])}/{res['n_bright']:<2d} "
        f"(faint {len(res['faint'])}) "
        f"offset {res['offset']:4.1f} ({res['dmax']:.2f} dex) "
        f"sum {res['sum_rel']:.0e} +sky {res['sky_adds']:+6.1%} "
        f"area {res['area']:5d} "
        f"star {res['STAR']:5.1%} nbr {res['NEIGHBOUR']:5.1%} "
        f"sky {res['SKY']:5.1%} off {res['OFF_IMAGE']:4.1%} "
        f"lowsn {res['LOW_SN']:5.1%} warn {warn}{ok}"
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", nargs="?", type=Path, default=DEFAULT)
    parser.add_argument(
        "--verbose", action="store_true", help="list each unmasked source"
    )
    args = parser.parse_args()
    folders = {gal[0] for gal in GALAXIES} | {EDGE_FIELD}
    missing = sorted(f for f in folders if not (args.folder / f).is_dir())
    if missing:
        print(
            f"bench_masks: no SDSS data at {args.folder} (missing "
            f"{', '.join(missing)}); nothing to measure."
        )
        return 0

    start = time.perf_counter()
    print(
        f"{len(GALAXIES)} galaxies, bundled model, default preprocessing; "
        f"other sources r < {BRIGHT:g}; stellar-mass totals at z = {REDSHIFT}"
    )
    print(
        " # field  RA        Dec       unmasked/bright (faint: 21 <= r < 23 in the "
        "footprint) offset px (Sigma* peak - Sigma* at target) sum rel.diff, +sky, "
        "footprint px, flagged fractions of the cutout, warnings"
    )
    results = []
    order = sorted(range(len(GALAXIES)), key=lambda i: GALAXIES[i][0])
    by_field = {}
    for i in order:
        by_field.setdefault(GALAXIES[i][0], []).append(i)
    lines = {}
    for name, index in by_field.items():
        folder = args.folder / name
        coords = SkyCoord(
            [GALAXIES[i][1] for i in index], [GALAXIES[i][2] for i in index],
            unit="deg",
        )  # fmt: skip
        maps, warned = _predict(folder, coords)
        frame = _field(folder).image("r")
        for k, i in enumerate(index):
            res = measure(maps[k], frame, coords[k])
            results.append(res)
            lines[i] = (_line(i, GALAXIES[i], res, warned[k]), res)
    for i in range(len(GALAXIES)):
        line, res = lines[i]
        print(line)
        if args.verbose:
            tx, ty = res["centre"]
            for x, y, mag in res["unmasked"] + res["faint"]:
                print(
                    f"     unmasked source r={mag:5.2f} at cutout pixel ({x}, {y}), "
                    f"{np.hypot(x - tx, y - ty):.1f} px from the target"
                )
            if res["peak"] is not None:
                print(f"     stellar-mass peak at cutout pixel {res['peak']}")

    folder = args.folder / EDGE_FIELD
    wcs = _field(folder).image("r").wcs
    edge = SkyCoord([wcs.pixel_to_world(*EDGE_PIXEL)])
    off = {}
    for label, steps in (("defaults", None), ("all steps on", ALL_STEPS)):
        maps, warned = _predict(folder, edge, preprocessing=steps)
        off[label] = float(maps[0].flagged("off_image").mean())
        warn = ",".join(sorted(set(warned[0]))) or "-"
        print(
            f"edge check {EDGE_FIELD[6:]} r-frame pixel {EDGE_PIXEL}, {label}: "
            f"OFF_IMAGE {off[label]:.2%} of the cutout (warn {warn})"
        )

    n = len(results)
    clean = sum(not r["unmasked"] for r in results)
    centred = sum(r["offset"] <= MAX_OFFSET for r in results)
    exact = sum(r["sum_rel"] < 1e-6 for r in results)
    edges = sum(v <= MAX_OFF_IMAGE for v in off.values())
    print(
        f"summary: no unmasked bright source {clean}/{n}; stellar-mass peak "
        f"<= {MAX_OFFSET:g} px {centred}/{n}; total == footprint sum {exact}/{n}; "
        f"OFF_IMAGE <= {MAX_OFF_IMAGE:.0%} {edges}/{len(off)} edge runs; "
        f"wall time {time.perf_counter() - start:.1f} s"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
