"""Do the maps depend on the cutout? Size and shift stability of a model.

    python benchmarks/bench_stability.py [--model DIR] [--n 20] [--size 256]
        [--no-preparation] [--without STEP ...]

Makes ``--n`` mock galaxies of ``--size`` pixels, prepares (as ``predict``
does, with the model's recorded preparation) the whole image, its central
half, and central-half cutouts shifted by 16 pixels along x and y, runs the
model on each, and prints the rms and largest change (dex) of every
property's central 64 x 64 pixels between them. A model whose output at a
pixel depends only on its neighbourhood changes little; model 0.1 (GroupNorm
over the whole image) changes a lot. With ``--no-preparation`` the images go
to the network as they are, which measures the network alone; with
``--without background`` (or ``match_psf``, ``mask_sources``; repeatable) one
step of the model's preparation is left out, to find which step moves the maps.
"""

import argparse

import numpy as np
import torch

from picasso_astro._options import LEGACY_PREPARATION
from picasso_astro.hub import load_model
from picasso_astro.masks import DO_NOT_USE
from picasso_astro.preprocess import prepare_target, to_model_input
from picasso_astro.training.mocks import GENERATOR_VERSION, galaxy_seed, make_mock

SHIFT = 16
CENTRE = 64


def crop(images, y0, x0, size):
    """The same galaxy in a smaller cutout (``BandImage`` per band)."""
    window = (slice(y0, y0 + size), slice(x0, x0 + size))
    return {
        band: image.replace(
            data=image.data[window],
            noise=None if image.noise is None else image.noise[window],
            mask=None if image.mask is None else image.mask[window],
        )
        for band, image in images.items()
    }


def maps_of(model, images, options):
    """Predicted values and the target's own pixels (the maps' footprint)."""
    prepared = prepare_target(images, options=options, name="stability")
    cube, mask = prepared.cube()
    x = torch.from_numpy(to_model_input(cube, mask, softening=model.config.softening))
    with torch.no_grad():
        value, _ = model.network.predict(x[None])
    return value[0].numpy(), (prepared.bitmask & int(DO_NOT_USE)) == 0


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None, help="model directory or name")
    parser.add_argument("--n", type=int, default=20)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--seed", type=int, default=31)
    parser.add_argument("--no-preparation", action="store_true")
    parser.add_argument(
        "--without",
        action="append",
        default=[],
        choices=["background", "match_psf", "mask_sources"],
    )
    args = parser.parse_args()
    model = load_model(args.model) if args.model else load_model()
    model.network.eval()
    options = model.config.preprocessing
    if args.no_preparation:
        options = LEGACY_PREPARATION
    options = options.replace(dict.fromkeys(args.without, False))
    size, half = args.size, args.size // 2
    start = (size - CENTRE) // 2
    cases = {
        f"{size} -> {half} px": (size - half) // 2,
        f"{half} px shifted by {SHIFT}": (size - half) // 2 + SHIFT,
    }
    changes = {case: [] for case in cases}
    kept = {case: [] for case in cases}
    for index in range(args.n):
        mock = make_mock(galaxy_seed(args.seed, index), size=size)
        reference, ref_own = maps_of(model, mock.images, options)
        window = (slice(start, start + CENTRE), slice(start, start + CENTRE))
        ref_centre, ref_own = reference[(..., *window)], ref_own[window]
        for case, offset in cases.items():
            y0 = x0 = offset
            values, own = maps_of(model, crop(mock.images, y0, x0, half), options)
            inner = (
                slice(start - y0, start - y0 + CENTRE),
                slice(start - x0, start - x0 + CENTRE),
            )
            changes[case].append(values[(..., *inner)] - ref_centre)
            kept[case].append((ref_own, own[inner]))
    steps = [k for k, v in options.recorded().items() if v is True]
    print(
        f"model {model.config.name} {model.config.revision}, {args.n} mocks "
        f"(generator {GENERATOR_VERSION}), preparation: {', '.join(steps) or 'none'}"
    )
    for case, diffs in changes.items():
        diffs = np.stack(diffs)  # (n, properties, 64, 64)
        before = np.stack([a for a, _ in kept[case]])
        after = np.stack([b for _, b in kept[case]])
        both = before & after
        flipped = np.sum(before != after) / max(np.sum(before | after), 1)
        print(
            f"central {CENTRE} x {CENTRE} px, {case}: rms and largest change over "
            f"all pixels | over the target's pixels in both maps "
            f"({flipped:.1%} of the target's pixels in one map only)"
        )
        for p, name in enumerate(model.property_names):
            d = diffs[:, p]
            own = d[both]
            print(
                f"  {name:<20} rms {np.sqrt(np.mean(d**2)):.3f} dex, max "
                f"{np.abs(d).max():.2f} | rms {np.sqrt(np.mean(own**2)):.3f} dex, "
                f"max {np.abs(own).max():.2f}"
            )


if __name__ == "__main__":
    main()
