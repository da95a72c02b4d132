"""End-to-end catalogue throughput: compressed SDSS frames in, map files out.

Galaxies are placed on a grid over each field's r frame (the positions need
not be galaxies for a throughput figure; in the crowded field 005405-6-0099
too few clean stars give a PSF, so ``--psf-fwhm`` stands in there), and
`predict_to_files` runs them with the bundled model, locally or on a Dask
LocalCluster.  Prints
galaxies/s (model loading and cluster start-up excluded; reading frames,
preprocessing, the network and writing files included) and the peak
resident memory of the process.

Run from the project root (frames from ../shared/data)::

    python benchmarks/bench_catalogue.py --per-field 40            # shared fields
    python benchmarks/bench_catalogue.py --per-field 1 --repeats 3 # one per field
    python benchmarks/bench_catalogue.py --per-field 40 --workers 2 # Dask
    python benchmarks/bench_catalogue.py --memory 10 1000          # flat memory?
"""

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from astropy.table import Table

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "sdss"
FIELDS = ("field-004510-4-0030", "field-002583-2-0136", "field-005405-6-0099")


def grid_catalogue(folders, per_field, *, margin=100):
    """Return a table of ``per_field`` positions on a grid in each field."""
    from picasso_astro.sdss import find_frames

    rows = []
    for key, fld in find_frames(folders).items():
        wcs, (ny, nx) = fld._geometry()
        side = int(np.ceil(np.sqrt(per_field)))
        xs = np.linspace(margin, nx - margin, side)
        ys = np.linspace(margin, ny - margin, side)
        points = [(x, y) for y in ys for x in xs][:per_field]
        for number, (x, y) in enumerate(points):
            coord = wcs.pixel_to_world(x, y)
            name = f"{fld.name}-{number:04d}"
            rows.append((name, coord.ra.deg, coord.dec.deg))
        del key
    return Table(rows=rows, names=("name", "ra", "dec"))


def _import_everything():
    import photutils.segmentation  # noqa: F401
    import torch  # noqa: F401

    import picasso_astro._dask
    import picasso_astro._stream
    import picasso_astro.preprocess  # noqa: F401


def peak_rss_mib():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run(args):
    from picasso_astro.catalogue import predict_to_files
    from picasso_astro.hub import load_model

    folders = [SHARED / name for name in FIELDS[: args.fields]]
    model = load_model(args.model)
    catalogue = grid_catalogue(folders, args.per_field)
    if args.total:
        # Rows taken field after field in turn, so that a short catalogue
        # visits every field as a long one does.
        reps = -(-args.total // len(catalogue))
        order = np.argsort(np.arange(len(catalogue)) % args.per_field, kind="stable")
        rows = [
            (f"{catalogue['name'][i]}-{rep}", catalogue["ra"][i], catalogue["dec"][i])
            for rep in range(reps)
            for i in order
        ][: args.total]
        catalogue = Table(rows=rows, names=("name", "ra", "dec"))
    client = cluster = None
    if args.workers:
        from picasso_astro._dask import local_client

        # Single-threaded workers started without Dask's MALLOC_TRIM_THRESHOLD_
        # (see the user guide, "Whole catalogues").
        client = local_client(args.workers)
        cluster = client.cluster
        # Start-up is not throughput: every worker imports what it needs
        # before the clock starts (the model is built on its first task).
        client.run(_import_everything)
    galaxies, elapsed = 0, 0.0
    for _ in range(args.repeats):
        with tempfile.TemporaryDirectory() as out:
            start = time.perf_counter()
            summary = predict_to_files(
                folders,
                out,
                targets=catalogue,
                model=model,
                device=args.device,
                batch_size=args.batch_size,
                client=client,
                preprocessing={"psf_fwhm": args.psf_fwhm},
            )
            elapsed += time.perf_counter() - start
        galaxies += int(np.sum(summary["status"] == "done"))
    if client is not None:
        client.close()
        cluster.close()
    return {
        "galaxies": galaxies,
        "fields": len(folders) * args.repeats,
        "seconds": elapsed,
        "galaxies_per_s": galaxies / elapsed,
        "peak_rss_mib": peak_rss_mib(),
        "workers": args.workers,
    }


def memory_check(sizes, args):
    """Run the benchmark in fresh processes for each catalogue size."""
    peaks = {}
    for size in sizes:
        command = [
            sys.executable,
            __file__,
            "--per-field",
            str(args.per_field),
            "--fields",
            str(args.fields),
            "--total",
            str(size),
            "--json",
        ]
        done = subprocess.run(command, capture_output=True, text=True, check=True)
        result = json.loads(done.stdout.strip().splitlines()[-1])
        peaks[size] = result["peak_rss_mib"]
        print(
            f"{size:6d} galaxies: peak RSS {result['peak_rss_mib']:.0f} MiB, "
            f"{result['galaxies_per_s']:.2f} galaxies/s"
        )
    smallest, largest = min(sizes), max(sizes)
    ratio = peaks[largest] / peaks[smallest]
    print(f"peak RSS at {largest} / at {smallest} galaxies: {ratio:.3f}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-field", type=int, default=40)
    parser.add_argument("--fields", type=int, default=3, choices=(1, 2, 3))
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--total", type=int, default=0, help="repeat rows up to N")
    parser.add_argument("--workers", type=int, default=0, help="Dask workers (0: none)")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--model", default=None)
    parser.add_argument(
        "--psf-fwhm",
        type=float,
        default=1.4,
        help="PSF FWHM (arcsec) where neither a psField nor stars give it",
    )
    parser.add_argument("--memory", type=int, nargs="+", metavar="N")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if args.memory:
        memory_check(args.memory, args)
        return
    result = run(args)
    if args.json:
        print(json.dumps(result))
        return
    where = f"Dask, {args.workers} workers" if args.workers else "local"
    print(
        f"{result['galaxies']} galaxies from {result['fields']} fields "
        f"({args.per_field} per field), {where}: {result['seconds']:.1f} s, "
        f"{result['galaxies_per_s']:.2f} galaxies/s; "
        f"peak RSS {result['peak_rss_mib']:.0f} MiB (this process)"
    )


if __name__ == "__main__":
    main()
