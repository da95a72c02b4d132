"""Stars seen through galaxies: how much of their light the maps count as the galaxy.

    python benchmarks/bench_star_masks.py [--n 300] [--seed 81] [--size 192]

Makes ``--n`` mock galaxies, prepares each as ``predict`` does (every step
on), and compares the masks with the mock's own map of foreign light
(``contaminant``: stars and unrelated galaxies). Per galaxy it counts, within
two true half-mass radii:

* ``foreign``: r-band flux of foreign-light pixels that stay unmasked, as a
  share of the r-band flux there (what the maps take for the galaxy); and
* ``lost``: the true stellar mass under pixels flagged STAR that hold no
  foreign light, as a share of the galaxy's (galaxy taken for a star).

It prints how many galaxies exceed 1, 5 and 20 % of each, and the worst.
No model is needed.
"""

import argparse

import numpy as np

from picasso_astro.masks import MaskBit
from picasso_astro.preprocess import prepare_target
from picasso_astro.properties import PROPERTIES
from picasso_astro.training.evaluate import half_mass_radius
from picasso_astro.training.mocks import galaxy_seed, make_mock

LEVELS = (0.01, 0.05, 0.2)


def shares(mock, prepared):
    """Unmasked foreign r-band flux and stellar mass flagged STAR, as shares."""
    plane = list(PROPERTIES).index("stellar_mass")
    valid = mock.truth_valid[plane] & np.isfinite(mock.truth[plane])
    mass = np.where(valid, 10.0 ** mock.truth[plane].astype(float), 0.0)
    (cy, cx), r_half = half_mass_radius(mass)
    yy, xx = np.indices(mass.shape)
    aperture = np.hypot(yy - cy, xx - cx) <= 2 * r_half
    cube, mask = prepared.cube()
    flux = np.clip(np.nan_to_num(cube[2]), 0, None)
    foreign = np.asarray(mock.contaminant, bool)
    kept = aperture & ~mask
    foreign_share = flux[kept & foreign].sum() / max(flux[kept].sum(), 1e-30)
    star = prepared.flagged(MaskBit.STAR) & aperture & ~foreign
    lost_share = mass[star].sum() / max(mass[aperture].sum(), 1e-30)
    return float(foreign_share), float(lost_share)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=300)
    parser.add_argument("--seed", type=int, default=81)
    parser.add_argument("--size", type=int, default=192)
    args = parser.parse_args()
    rows = []
    for index in range(args.n):
        mock = make_mock(galaxy_seed(args.seed, index), size=args.size)
        prepared = prepare_target(mock.images, name=f"mock {index}")
        rows.append((index, *shares(mock, prepared)))
    table = np.array(rows)
    print(f"{args.n} mocks, seed {args.seed}, {args.size} px, every preparation step")
    for column, what in ((1, "foreign light kept"), (2, "galaxy mass flagged STAR")):
        counts = ", ".join(
            f"> {level:.0%}: {int(np.sum(table[:, column] > level))}"
            for level in LEVELS
        )
        worst = table[np.argmax(table[:, column])]
        print(
            f"{what:26s} galaxies {counts}; worst {worst[column]:.1%} "
            f"(mock {int(worst[0])}); mean {table[:, column].mean():.2%}"
        )


if __name__ == "__main__":
    main()
