"""Do the maps of real galaxies depend on the cutout? Stability on SDSS frames.

    python benchmarks/bench_stability_frames.py [--model DIR] [--per-field 6]
        [--context N] [--shift 5 11]

Finds the ``--per-field`` brightest extended sources (not saturated) in the
r frame of each test field in ``../shared/data/sdss``, maps each with
`~picasso_astro.predict` three times: around its centroid (the model's
cutout), with the target moved by ``--shift`` pixels (x, y), and with a
cutout twice as large. Prints, for the stellar-mass map over the central
64 x 64 pixels of the first cutout and the target's pixels in both maps,
the pooled rms change, the median and largest per-galaxy rms, and how many
galaxies' input masks differ there (stars and neighbours found differently
in the two cutouts). ``--context N`` passes ``preprocessing={"context": N}``
(by default the model's own).
"""

import argparse
import warnings
from pathlib import Path

import numpy as np
from astropy.convolution import convolve
from astropy.coordinates import SkyCoord
from photutils.segmentation import (
    SourceCatalog,
    detect_sources,
    make_2dgaussian_kernel,
)

import picasso_astro
from picasso_astro.hub import load_model
from picasso_astro.sdss import find_frames

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "sdss"
FIELDS = ("field-004510-4-0030", "field-002583-2-0136", "field-005405-6-0099")
HALF = 32


def extended_sources(field, count):
    """Pixel centroids (x, y) of the brightest extended, unsaturated sources."""
    r = field.images()["r"]
    data = np.nan_to_num(r.data)
    smooth = convolve(data, make_2dgaussian_kernel(3.0, size=7))
    segments = detect_sources(smooth, 0.1, n_pixels=200)
    table = SourceCatalog(data, segments).to_table(
        columns=[
            "x_centroid",
            "y_centroid",
            "max_value",
            "semimajor_axis",
            "segment_flux",
        ]
    )
    keep = (table["max_value"] < 30) & (table["semimajor_axis"].value > 3)
    table = table[keep]
    table.sort("segment_flux", reverse=True)
    return r.wcs, [
        (float(t["x_centroid"]), float(t["y_centroid"])) for t in table[:count]
    ]


def run(folder, model, coords, preprocessing):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return picasso_astro.predict(
            folder,
            targets=SkyCoord(coords),
            model=model,
            preprocessing=preprocessing,
            progress=False,
        )


def change(first, other):
    """Stellar-mass change over the first map's central pixels, target in both."""
    x0, y0 = other.wcs.world_to_pixel(first.wcs.pixel_to_world(0, 0))
    dx, dy = round(float(x0)), round(float(y0))
    cy, cx = (np.array(first.shape) - 1) // 2
    ys, xs = np.mgrid[cy - HALF + 1 : cy + HALF + 1, cx - HALF + 1 : cx + HALF + 1]
    oy, ox = ys + dy, xs + dx
    inside = (oy >= 0) & (ox >= 0) & (oy < other.shape[0]) & (ox < other.shape[1])
    ys, xs, oy, ox = ys[inside], xs[inside], oy[inside], ox[inside]
    both = first.footprint[ys, xs] & other.footprint[oy, ox]
    diff = other["stellar_mass"].data[oy, ox] - first["stellar_mass"].data[ys, xs]
    masks_differ = bool(np.any(first.footprint[ys, xs] != other.footprint[oy, ox]))
    return diff[both], masks_differ


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None, help="model directory or name")
    parser.add_argument("--per-field", type=int, default=6)
    parser.add_argument("--context", type=int, default=None)
    parser.add_argument("--shift", type=float, nargs=2, default=(5.0, 11.0))
    args = parser.parse_args()
    if not SHARED.is_dir():
        parser.exit(1, f"no SDSS frames at {SHARED}\n")
    model = load_model(args.model) if args.model else load_model()
    size = model.config.cutout.get("size", 128)
    context = args.context
    if context is None:
        context = model.config.preprocessing.context
    base = {"context": context}
    changes = {"shift": [], "size": []}
    differ = {"shift": 0, "size": 0}
    for name in FIELDS:
        folder = SHARED / name
        (field,) = find_frames(folder).values()
        wcs, centres = extended_sources(field, args.per_field)
        at = [wcs.pixel_to_world(x, y) for x, y in centres]
        moved = [
            wcs.pixel_to_world(x + args.shift[0], y + args.shift[1]) for x, y in centres
        ]
        first = run(folder, model, at, base)
        variants = {
            "shift": run(folder, model, moved, base),
            "size": run(folder, model, at, {**base, "cutout": 2 * size}),
        }
        for kind, maps in variants.items():
            for a, b in zip(first, maps, strict=True):
                diff, masks_differ = change(a, b)
                if diff.size:
                    changes[kind].append(diff)
                    differ[kind] += masks_differ
    print(
        f"model {model.name} {model.revision}, context {context}; stellar mass, "
        f"central {2 * HALF} x {2 * HALF} px, the target's pixels in both maps"
    )
    for kind, label in (
        ("shift", f"moved by {args.shift[0]:g}, {args.shift[1]:g} px"),
        ("size", f"{size} vs {2 * size} px cutouts"),
    ):
        per = [float(np.sqrt(np.mean(d**2))) for d in changes[kind]]
        pooled = float(np.sqrt(np.mean(np.concatenate(changes[kind]) ** 2)))
        print(
            f"  {label:<26} {len(per)} galaxies: pooled rms {pooled:.3f} dex, "
            f"median {np.median(per):.3f}, largest {max(per):.3f}; "
            f"footprints differ in {differ[kind]}"
        )


if __name__ == "__main__":
    main()
