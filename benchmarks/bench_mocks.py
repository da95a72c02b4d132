"""Mock generation speed: galaxies per second on one core.

    python benchmarks/bench_mocks.py [--size 128] [--n 100] [--write]
        [--sky-frames ../shared/data/sdss] [--population default]

Prints galaxies/s for `make_mock` alone with the model camera (Gaussian sky)
and, with ``--sky-frames``, rendered into real SDSS frames (the frames are
read and their sources detected once, before timing, as a worker does once per
process); with ``--write``, for the whole ``picasso-train mocks`` path
including preparation and HDF5 writing. Set ``OMP_NUM_THREADS=1`` to keep
numpy on one core (the FFTs use one worker); on a shared machine the CPU-time
figure is the steadier one. The target is 10 galaxies/s per core at 128 x 128.
"""

import argparse
import tempfile
import time

from picasso_astro.training.mocks import (
    galaxy_seed,
    make_mock,
    open_sky_frames,
    write_mock_dataset,
)


def _time(label, n, size, **options):
    start = time.perf_counter()
    cpu_start = time.process_time()
    for index in range(n):
        make_mock(galaxy_seed(0, index), size=size, **options)
    elapsed = time.perf_counter() - start
    cpu = time.process_time() - cpu_start
    print(
        f"make_mock {size}x{size} {label}: {n / elapsed:.1f} galaxies/s wall, "
        f"{n / cpu:.1f} galaxies/s per core of CPU time"
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--n", type=int, default=100)
    parser.add_argument("--population", default="default")
    parser.add_argument("--sky-frames", default=None)
    parser.add_argument("--write", action="store_true")
    args = parser.parse_args()

    make_mock(galaxy_seed(0, 0), size=args.size)  # load tables, cosmology
    _time("Gaussian sky", args.n, args.size, population=args.population)
    if args.sky_frames:
        sky = open_sky_frames(args.sky_frames)
        start = time.perf_counter()
        for index in range(len(sky.ids)):
            sky.field(index)
        print(
            f"reading {len(sky.ids)} fields and detecting their sources (once per "
            f"process): {time.perf_counter() - start:.1f} s"
        )
        _time("real sky", args.n, args.size, population=args.population, sky=sky)
    if args.write:
        with tempfile.TemporaryDirectory() as tmp:
            start = time.perf_counter()
            write_mock_dataset(
                tmp,
                args.n,
                seed=0,
                size=args.size,
                population=args.population,
                sky_frames=args.sky_frames,
                progress=False,
            )
            elapsed = time.perf_counter() - start
        print(
            f"write_mock_dataset {args.size}x{args.size}: "
            f"{args.n / elapsed:.1f} galaxies/s (preparation and HDF5 writing "
            "included; sky frames already read in this process)"
        )


if __name__ == "__main__":
    main()
