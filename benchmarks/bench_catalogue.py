"""End-to-end catalogue throughput: compressed SDSS frames in, map files out.

Galaxies are placed on a grid over each field's r frame (the positions need
not be galaxies for a throughput figure; in the crowded field 005405-6-0099
too few clean stars give a PSF, so ``--psf-fwhm`` stands in there), and
`predict_to_files` runs them with the bundled model, locally or on a Dask
LocalCluster.  Prints
galaxies/s (model loading and cluster start-up excluded; reading frames,
preprocessing, the network and writing files included) and the peak
resident memory of the process.

With ``--cutouts``, the galaxies are instead synthetic five-band cutouts
(one FITS file per band, written to a temporary folder beforehand and not
timed), the catalogue guide's other case.

Run from the project root (frames from ../shared/data)::

    python benchmarks/bench_catalogue.py --per-field 40            # shared fields
    python benchmarks/bench_catalogue.py --per-field 1 --repeats 3 # one per field
    python benchmarks/bench_catalogue.py --per-field 40 --workers 2 # Dask
    python benchmarks/bench_catalogue.py --memory 10 1000          # flat memory?
    python benchmarks/bench_catalogue.py --cutouts --total 200     # cutouts
    python benchmarks/bench_catalogue.py --cutouts --memory 10 1000
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
        wcs, (ny, nx) = fld.geometry()
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


def write_cutouts(folder, count, size=128):
    """Write ``count`` synthetic galaxies, five single-band files each.

    A Gaussian disc whose brightness grows from u to z, in nanomaggies with
    noise, on a TAN grid of 0.396 arcsec pixels; every galaxy differs.
    """
    from astropy.io import fits
    from astropy.wcs import WCS

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    yy, xx = np.mgrid[0:size, 0:size]
    centre = size / 2 - 0.5
    paths = []
    for number in range(count):
        rng = np.random.default_rng(number)
        wcs = WCS(naxis=2)
        wcs.wcs.ctype = ["RA---TAN", "DEC--TAN"]
        wcs.wcs.crval = [150.0 + number * 1e-3, 2.0]
        wcs.wcs.crpix = [size / 2 + 0.5, size / 2 + 0.5]
        wcs.wcs.cdelt = [-0.396 / 3600, 0.396 / 3600]
        radius = rng.uniform(3.0, 12.0)
        disc = np.exp(-((xx - centre) ** 2 + (yy - centre) ** 2) / (2 * radius**2))
        for k, band in enumerate("ugriz"):
            data = (1 + k) * 2.0 * disc + rng.normal(0, 0.05, disc.shape)
            header = wcs.to_header()
            header["FILTER"] = band
            header["BUNIT"] = "nanomaggy"
            path = folder / f"gal{number:05d}-{band}.fits"
            fits.PrimaryHDU(data.astype(np.float32), header=header).writeto(path)
            paths.append(path)
    return paths


def run_cutouts(args):
    """Run ``args.total`` cutout galaxies (from ``args.cutout_dir`` if given)."""
    from picasso_astro.catalogue import predict_to_files
    from picasso_astro.hub import load_model

    model = load_model(args.model)
    total = args.total or 100
    with tempfile.TemporaryDirectory() as scratch:
        if args.cutout_dir:
            paths = sorted(Path(args.cutout_dir).glob("gal*-?.fits"))[: 5 * total]
        else:
            paths = write_cutouts(Path(scratch) / "in", total, args.cutout_size)
        if len(paths) != 5 * total:
            msg = f"{args.cutout_dir} holds fewer than {total} galaxies"
            raise SystemExit(msg)
        start = time.perf_counter()
        summary = predict_to_files(
            paths,
            Path(scratch) / "out",
            model=model,
            device=args.device,
            batch_size=args.batch_size,
        )
        elapsed = time.perf_counter() - start
    galaxies = int(np.sum(summary["status"] == "done"))
    return {
        "galaxies": galaxies,
        "fields": 0,
        "seconds": elapsed,
        "galaxies_per_s": galaxies / elapsed,
        "peak_rss_mib": peak_rss_mib(),
        "workers": 0,
    }


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
    with tempfile.TemporaryDirectory() as scratch:
        common = [
            "--json",
            "--device",
            args.device,
            "--batch-size",
            str(args.batch_size),
        ]
        if args.model:
            common += ["--model", args.model]
        if args.cutouts:
            # The same files for every size, written once, outside the runs.
            write_cutouts(scratch, max(sizes), args.cutout_size)
            common += ["--cutouts", "--cutout-dir", scratch]
        else:
            common += ["--per-field", str(args.per_field), "--fields", str(args.fields)]
        kind = "cutout galaxies" if args.cutouts else "galaxies"
        for size in sizes:
            command = [sys.executable, __file__, "--total", str(size), *common]
            done = subprocess.run(command, capture_output=True, text=True, check=True)
            result = json.loads(done.stdout.strip().splitlines()[-1])
            peaks[size] = result["peak_rss_mib"]
            print(
                f"{size:6d} {kind}: peak RSS {result['peak_rss_mib']:.0f} MiB, "
                f"{result['galaxies']} done, {result['galaxies_per_s']:.2f} galaxies/s"
            )
    smallest, largest = min(sizes), max(sizes)
    ratio = peaks[largest] / peaks[smallest]
    print(f"peak RSS at {largest} / at {smallest} {kind}: {ratio:.3f}")
    print(f"peak RSS difference, {largest} vs {smallest}: {100 * (ratio - 1):+.1f} %")


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
    parser.add_argument(
        "--cutouts", action="store_true", help="synthetic cutouts instead of frames"
    )
    parser.add_argument("--cutout-size", type=int, default=128, help="pixels a side")
    parser.add_argument("--cutout-dir", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if args.memory:
        memory_check(args.memory, args)
        return
    result = run_cutouts(args) if args.cutouts else run(args)
    if args.json:
        print(json.dumps(result))
        return
    if args.cutouts:
        print(
            f"{result['galaxies']} cutout galaxies of {args.cutout_size} pixels, "
            f"local: {result['seconds']:.1f} s, "
            f"{result['galaxies_per_s']:.2f} galaxies/s; "
            f"peak RSS {result['peak_rss_mib']:.0f} MiB (this process)"
        )
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
