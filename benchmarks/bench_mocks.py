"""Mock generation speed: galaxies per second on one core.

    python benchmarks/bench_mocks.py [--size 256] [--n 100] [--write]

Prints galaxies/s for `make_mock` alone and, with ``--write``, for the whole
``picasso-train mocks`` path including HDF5 writing. Set
``OMP_NUM_THREADS=1`` to keep numpy on one core (the FFTs use one worker);
on a shared machine the CPU-time figure is the steadier one.
"""

import argparse
import tempfile
import time

from picasso_astro.training.mocks import galaxy_seed, make_mock, write_mock_dataset


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--n", type=int, default=100)
    parser.add_argument("--write", action="store_true")
    args = parser.parse_args()

    make_mock(galaxy_seed(0, 0), size=args.size)  # load tables, cosmology
    start = time.perf_counter()
    cpu_start = time.process_time()
    for index in range(args.n):
        make_mock(galaxy_seed(0, index), size=args.size)
    elapsed = time.perf_counter() - start
    cpu = time.process_time() - cpu_start
    print(
        f"make_mock {args.size}x{args.size}: {args.n / elapsed:.1f} galaxies/s wall, "
        f"{args.n / cpu:.1f} galaxies/s per core of CPU time"
    )
    if args.write:
        with tempfile.TemporaryDirectory() as tmp:
            start = time.perf_counter()
            write_mock_dataset(tmp, args.n, seed=0, size=args.size, progress=False)
            elapsed = time.perf_counter() - start
        print(
            f"write_mock_dataset {args.size}x{args.size}: "
            f"{args.n / elapsed:.1f} galaxies/s"
        )


if __name__ == "__main__":
    main()
