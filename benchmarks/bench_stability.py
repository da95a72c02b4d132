"""Do the maps depend on the cutout? Size and shift stability of a model.

    python benchmarks/bench_stability.py [--model DIR] [--n 20] [--size 256]
        [--no-preparation]

Makes ``--n`` mock galaxies of ``--size`` pixels, prepares (as ``predict``
does, with the model's recorded preparation) the whole image, its central
half, and central-half cutouts shifted by 16 pixels along x and y, runs the
model on each, and prints the rms and largest change (dex) of every
property's central 64 x 64 pixels between them. A model whose output at a
pixel depends only on its neighbourhood changes little; model 0.1 (GroupNorm
over the whole image) changes a lot. With ``--no-preparation`` the images go
to the network as they are, which measures the network alone.
"""

import argparse

import numpy as np
import torch

from picasso_astro._options import LEGACY_PREPARATION
from picasso_astro.hub import load_model
from picasso_astro.preprocess import prepare_target, to_model_input
from picasso_astro.training.mocks import galaxy_seed, make_mock

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
    prepared = prepare_target(images, options=options, name="stability")
    cube, mask = prepared.cube()
    x = torch.from_numpy(to_model_input(cube, mask, softening=model.config.softening))
    with torch.no_grad():
        value, _ = model.network.predict(x[None])
    return value[0].numpy()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None, help="model directory or name")
    parser.add_argument("--n", type=int, default=20)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--seed", type=int, default=31)
    parser.add_argument("--no-preparation", action="store_true")
    args = parser.parse_args()
    model = load_model(args.model) if args.model else load_model()
    model.network.eval()
    options = model.config.preprocessing
    if args.no_preparation:
        options = LEGACY_PREPARATION
    size, half = args.size, args.size // 2
    start = (size - CENTRE) // 2
    cases = {
        f"{size} -> {half} px": (size - half) // 2,
        f"{half} px shifted by {SHIFT}": (size - half) // 2 + SHIFT,
    }
    changes = {case: [] for case in cases}
    for index in range(args.n):
        mock = make_mock(galaxy_seed(args.seed, index), size=size)
        reference = maps_of(model, mock.images, options)
        ref_centre = reference[:, start : start + CENTRE, start : start + CENTRE]
        for case, offset in cases.items():
            y0 = x0 = offset
            values = maps_of(model, crop(mock.images, y0, x0, half), options)
            inner = values[
                :, start - y0 : start - y0 + CENTRE, start - x0 : start - x0 + CENTRE
            ]
            changes[case].append(inner - ref_centre)
    steps = [k for k, v in options.recorded().items() if v is True]
    print(
        f"model {model.config.name} {model.config.revision}, {args.n} mocks, "
        f"preparation: {', '.join(steps) or 'none'}"
    )
    for case, diffs in changes.items():
        diffs = np.stack(diffs)  # (n, properties, 64, 64)
        print(f"central {CENTRE} x {CENTRE} px, {case}:")
        for p, name in enumerate(model.property_names):
            d = diffs[:, p]
            rms = float(np.sqrt(np.mean(d**2)))
            print(f"  {name:<20} rms {rms:.3f} dex, max {np.abs(d).max():.2f} dex")


if __name__ == "__main__":
    main()
