"""Preprocessing time per galaxy from SDSS frames: reading, cold and warm.

Reading: decompressing and reading the five frames of a field (and which
bzip2 decoder did it).  Cold: the first galaxy of a field (PSF from stars or
the psField).  Warm: further galaxies in the same field, at the bundled
model's cutout size (128) and at 256.  Each figure is the best of
``--repeat`` runs.

Run from the project root::

    PYTHONPATH=. python benchmarks/bench_preprocess.py [path/to/field-directory]
"""

import argparse
import time
from pathlib import Path

from astropy.coordinates import SkyCoord

from picasso_astro import preprocess, sdss

DEFAULT = (
    Path(__file__).resolve().parents[1].parent
    / "shared"
    / "data"
    / "sdss"
    / "field-004510-4-0030"
)
PIXELS = [(1506, 535), (815, 1031), (395, 1256), (657, 758), (1329, 1157)]


def _field(folder):
    return next(iter(sdss.find_frames(folder).values()))


def _read(field):
    per_band = {}
    for band in field.bands:
        t0 = time.perf_counter()
        field.image(band)
        per_band[band] = time.perf_counter() - t0
    return per_band


def _prepare_each(field, coords, size):
    """Seconds per galaxy of `prepare_target` with every step on, in order."""
    times = []
    for coord in coords:
        start = time.perf_counter()
        preprocess.prepare_target(
            field.images(), coord, size=size, psfield=field.psfield_data()
        )
        times.append(time.perf_counter() - start)
    return times


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", nargs="?", type=Path, default=DEFAULT)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    reads, totals, colds, warm = [], [], [], {128: [], 256: []}
    for _ in range(args.repeat):
        field = _field(args.folder)
        per_band = _read(field)
        reads.append(per_band)
        totals.append(sum(per_band.values()))
        wcs = field.image("r").wcs
        coords = SkyCoord([wcs.pixel_to_world(x, y) for x, y in PIXELS])
        colds.append(_prepare_each(field, coords[:1], 128)[0])
        for size in warm:
            times = _prepare_each(field, coords, size)
            warm[size].append(sum(times) / len(times))

    best = min(range(args.repeat), key=totals.__getitem__)
    decoder = getattr(sdss, "_bz2_decoder", lambda: "bz2 (stdlib)")()
    print(f"field {field.name}, best of {args.repeat}, bzip2 decoder: {decoder}")
    bands = ", ".join(f"{b} {t:.2f}" for b, t in reads[best].items())
    print(f"read frames: {totals[best]:.2f} s in all ({bands} s)")
    print(f"first galaxy (PSF measured, 128 px): {min(colds):.2f} s")
    for size, values in warm.items():
        print(
            f"warm, {size}x{size} px: {min(values):.3f} s per galaxy "
            f"({1 / min(values):.1f} galaxies/s)"
        )
    one = totals[best] + min(colds)
    print(f"one galaxy per field (read + first galaxy): {one:.2f} s")


if __name__ == "__main__":
    main()
