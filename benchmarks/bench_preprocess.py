"""Preprocessing time per galaxy from SDSS frames: cold and warm.

Cold: the first galaxy of a field (decompressing and reading the five frames,
measuring the PSF from stars).  Warm: further galaxies in the same field.

Run from the project root::

    PYTHONPATH=. python benchmarks/bench_preprocess.py [path/to/field-directory]
"""

import sys
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


def main():
    folder = Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT
    fields = sdss.find_frames(folder)
    field = next(iter(fields.values()))
    t0 = time.perf_counter()
    images = field.images()
    t_read = time.perf_counter() - t0
    wcs = images["r"].wcs
    pixels = [(1506, 535), (815, 1031), (395, 1256), (657, 758), (1329, 1157)]
    coords = SkyCoord([wcs.pixel_to_world(x, y) for x, y in pixels])
    times = []
    for target in preprocess.prepare_targets(fields, coords, size=256):
        times.append(time.perf_counter())
        del target
    starts = [t0 + t_read, *times[:-1]]
    per = [end - start for start, end in zip(starts, times, strict=True)]
    print(f"field {field.name}: 5 frames read in {t_read:.2f} s")
    print(f"cold (first galaxy, incl. PSF from stars): {per[0]:.2f} s")
    print(f"cold incl. reading frames: {per[0] + t_read:.2f} s")
    warm = per[1:]
    print(
        f"warm (next {len(warm)} galaxies, 256x256): "
        f"{sum(warm) / len(warm):.2f} s per galaxy"
    )


if __name__ == "__main__":
    main()
