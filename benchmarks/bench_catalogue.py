"""End-to-end catalogue throughput: compressed SDSS frames in, map files out.

Galaxies are placed on a grid over each field's r frame (the positions need
not be galaxies for a throughput figure; in the crowded field 005405-6-0099
too few clean stars give a PSF, so ``--psf-fwhm`` stands in there), and
`predict_to_files` runs them with the bundled model, locally or on a Dask
LocalCluster.  Prints
galaxies/s (model loading and cluster start-up excluded; reading frames,
preprocessing, the network and writing files included) and the peak
resident memory of the process (and of each Dask worker).
With 16 galaxies or more in a field (as with ``--per-field 40``), the
field's residual background is estimated once on its whole frames; on Dask,
each band of such a field is read and prepared once, as a task of its own,
for all the field's tasks, and a field is split over Dask tasks only where a
worker would otherwise wait.

With ``--one-per-field N``, each galaxy lies in a field of its own, as in
spectroscopic catalogues: N fields, one galaxy at a random place in each.
The test data hold three fields, one of them (002583-2-0136) with its
psField, so the N fields are N names (symbolic links in a temporary folder)
of those, each a new field for the package (what it learns of a file is
kept by path): first N names of the psField field (the PSF from the psField;
frames read in part), then N names of the three fields in turn (two of three
without a psField: frames read whole, PSF measured on the stars).  Each
galaxy goes to its own name (the planner would put it in the first of
identical fields).  Prints galaxies/s (wall clock) and CPU seconds per
galaxy (all processes), then the cold start (import, model load, cluster
start, first galaxy, in a fresh process) and the peak memory of each process.

With ``--cutouts``, the galaxies are instead synthetic five-band cutouts
(one FITS file per band, written to a temporary folder beforehand and not
timed), the catalogue guide's other case.

Run from the project root (frames from ../shared/data)::

    python benchmarks/bench_catalogue.py --per-field 40            # shared fields
    python benchmarks/bench_catalogue.py --one-per-field 12         # own fields
    python benchmarks/bench_catalogue.py --one-per-field 12 --workers 2
    python benchmarks/bench_catalogue.py --per-field 40 --workers 2 # Dask
    python benchmarks/bench_catalogue.py --memory 10 1000          # flat memory?
    python benchmarks/bench_catalogue.py --cutouts --total 200     # cutouts
    python benchmarks/bench_catalogue.py --cutouts --memory 10 1000
"""

import argparse
import contextlib
import importlib
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
#: The test field with a psField.
PSFIELD_FIELD = "field-002583-2-0136"


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
    import photutils.background
    import photutils.psf_matching
    import photutils.segmentation  # noqa: F401
    import scipy.signal  # noqa: F401
    import torch  # noqa: F401

    # photutils' SourceCatalog imports these (when installed) to record
    # their versions in its metadata: a second of the first galaxy.
    for optional in ("matplotlib", "skimage"):
        with contextlib.suppress(ImportError):
            importlib.import_module(optional)

    import picasso_astro._dask
    import picasso_astro._stream
    import picasso_astro.preprocess  # noqa: F401


def peak_rss_mib():
    """Peak resident memory of this process, MiB.

    Linux's ``VmHWM``: since the process started.  (``ru_maxrss`` keeps the
    peak of the parent a process was started from, through ``exec``.)
    """
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
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
    # Start-up is not throughput: what the first galaxy would import is
    # imported before the clock starts (the cold start is its own figure).
    _import_everything()
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
    worker_peaks = _worker_peaks(client)
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
        "worker_peak_rss_mib": worker_peaks,
    }


def forget_fields():
    """Forget what this process learnt of frame files (as for new fields).

    Also with versions before frames were read in part, for comparisons.
    """
    from picasso_astro import _psf

    try:
        from picasso_astro import _bz2fits
    except ImportError:
        pass
    else:
        _bz2fits.clear_cache()
    if hasattr(_psf, "forget_star_psfs"):
        _psf.forget_star_psfs()
    _psf._STAR_PSFS.clear()
    _psf._FWHM_CACHE._entries.clear()
    _psf._KERNEL_CACHE._entries.clear()


def link_fields(folders, count, directory):
    """Give ``count`` fields new names in ``directory``: symbolic links.

    Name ``k`` is field ``folders[k % len(folders)]`` (frames and psField)
    under field number ``1000 + k``.  Returns the folder of each name, in
    the order `~picasso_astro.sdss.find_frames` sorts them.
    """
    import re

    directory = Path(directory)
    sources = []
    for k in range(count):
        folder = folders[k % len(folders)]
        for path in sorted(folder.iterdir()):
            name = re.sub(
                r"^((frame-[ugriz]|psField)-\d{6}-\d)-\d{4}(\.fits?(\.bz2)?)$",
                rf"\g<1>-{1000 + k:04d}\g<3>",
                path.name,
            )
            if name != path.name:
                (directory / name).symlink_to(path)
        sources.append(folder)
    return sources


def random_positions(fields, seed, *, margin=10):
    """One position per field, uniform over its r frame (``margin`` from edges)."""
    rng = np.random.default_rng(seed)
    coords = []
    for fld in fields:
        wcs, (ny, nx) = fld.geometry()
        x = rng.uniform(margin, nx - 1 - margin)
        y = rng.uniform(margin, ny - 1 - margin)
        coords.append(wcs.pixel_to_world(x, y))
    return coords


@contextlib.contextmanager
def one_galaxy_per_field_plan():
    """Plan galaxy ``k`` of the catalogue in the ``k``-th field given."""
    from picasso_astro import _run
    from picasso_astro._plan import FieldUnit, Plan, Target

    def plan(inputs, targets=None, **_):
        fields = list(inputs.values())
        units = [
            FieldUnit(fld, [Target(k, targets.names[k], targets.coords[k])])
            for k, fld in enumerate(fields)
        ]
        return Plan(list(targets.names), units, [])

    real = _run.plan_units
    _run.plan_units = plan
    try:
        yield
    finally:
        _run.plan_units = real


def _build_model(digest, payload, device):
    from picasso_astro._dask import _worker_model

    _worker_model(digest, payload, device)


def _cpu_seconds(client):
    """CPU seconds used so far by this process and the Dask workers."""
    total = time.process_time()
    if client is not None:
        total += sum(client.run(time.process_time).values())
    return total


def _forget_everywhere(client):
    forget_fields()
    if client is not None:
        client.run(forget_fields)


def _worker_peaks(client):
    if client is None:
        return []
    return sorted(client.run(peak_rss_mib).values())


def run_one_per_field(args):
    """Galaxies in fields of their own: psField fields, then the shared fields."""
    from picasso_astro.catalogue import predict_to_files
    from picasso_astro.hub import load_model
    from picasso_astro.sdss import find_frames

    model = load_model(args.model)
    client = None
    if args.workers:
        from picasso_astro._dask import local_client, model_payload

        client = local_client(args.workers)
        client.run(_import_everything)
        # Each worker builds the model once, on its first task: not timed.
        digest, payload = model_payload(model)
        client.run(_build_model, digest, payload, args.device)
    results = []
    cases = [
        ("psField", [SHARED / PSFIELD_FIELD]),
        ("shared", [SHARED / name for name in FIELDS]),
    ]
    try:
        for label, folders in cases:
            with tempfile.TemporaryDirectory() as scratch:
                links = Path(scratch) / "fields"
                links.mkdir()
                link_fields(folders, args.one_per_field, links)
                fields = find_frames(links)
                coords = random_positions(fields.values(), seed=len(results))
                names = [f"{fld.name}-{label}" for fld in fields.values()]
                catalogue = Table(
                    {
                        "name": names,
                        "ra": [c.ra.deg for c in coords],
                        "dec": [c.dec.deg for c in coords],
                    }
                )
                _forget_everywhere(client)
                cpu = _cpu_seconds(client)
                start = time.perf_counter()
                with one_galaxy_per_field_plan():
                    summary = predict_to_files(
                        fields,
                        Path(scratch) / "out",
                        targets=catalogue,
                        model=model,
                        device=args.device,
                        batch_size=args.batch_size,
                        client=client,
                        preprocessing={"psf_fwhm": args.psf_fwhm},
                    )
                elapsed = time.perf_counter() - start
                cpu = _cpu_seconds(client) - cpu
            done = int(np.sum(summary["status"] == "done"))
            results.append(
                {
                    "case": label,
                    "galaxies": done,
                    "seconds": elapsed,
                    "galaxies_per_s": done / elapsed,
                    "cpu_s_per_galaxy": cpu / max(done, 1),
                }
            )
        peaks = {"process": peak_rss_mib(), "workers": _worker_peaks(client)}
    finally:
        if client is not None:
            cluster = client.cluster
            client.close()
            cluster.close()
    return results, peaks


def cold_start(args):
    """Time a fresh process: import, model load, cluster, one galaxy."""
    start = time.perf_counter()
    import picasso_astro  # noqa: F401
    from picasso_astro.catalogue import predict_to_files
    from picasso_astro.hub import load_model
    from picasso_astro.sdss import find_frames

    imported = time.perf_counter()
    model = load_model(args.model)
    loaded = time.perf_counter()
    client = None
    if args.workers:
        from picasso_astro._dask import local_client

        client = local_client(args.workers)
    started = time.perf_counter()
    fields = find_frames(SHARED / PSFIELD_FIELD)
    (coord,) = random_positions(fields.values(), seed=7)
    catalogue = Table({"name": ["cold"], "ra": [coord.ra.deg], "dec": [coord.dec.deg]})
    with tempfile.TemporaryDirectory() as out:
        predict_to_files(
            fields,
            out,
            targets=catalogue,
            model=model,
            device=args.device,
            client=client,
            preprocessing={"psf_fwhm": args.psf_fwhm},
        )
    first = time.perf_counter()
    result = {
        "import_s": imported - start,
        "model_s": loaded - imported,
        "cluster_s": started - loaded,
        "first_galaxy_s": first - started,
        "total_s": first - start,
        "cpu_s": time.process_time(),
        "peak_rss_mib": peak_rss_mib(),
        "worker_peak_rss_mib": _worker_peaks(client),
    }
    if client is not None:
        cluster = client.cluster
        client.close()
        cluster.close()
    return result


def report_one_per_field(args):
    where = f"Dask, {args.workers} workers" if args.workers else "one process"
    results, peaks = run_one_per_field(args)
    for result in results:
        kind = (
            f"names of {PSFIELD_FIELD[6:]} (psField)"
            if result["case"] == "psField"
            else "names of the three fields (one with a psField)"
        )
        print(
            f"one galaxy per field, {where}, {result['galaxies']} {kind}: "
            f"{result['seconds']:.1f} s, {result['galaxies_per_s']:.2f} galaxies/s, "
            f"{result['cpu_s_per_galaxy']:.2f} CPU s per galaxy"
        )
    command = [sys.executable, __file__, "--cold-start", "--device", args.device]
    command += ["--workers", str(args.workers)]
    if args.model:
        command += ["--model", args.model]
    done = subprocess.run(command, capture_output=True, text=True, check=True)
    cold = json.loads(done.stdout.strip().splitlines()[-1])
    cluster = f", cluster {cold['cluster_s']:.1f} s" if args.workers else ""
    print(
        f"cold start, {where}: import {cold['import_s']:.1f} s, model "
        f"{cold['model_s']:.1f} s{cluster}, first galaxy "
        f"{cold['first_galaxy_s']:.1f} s; {cold['total_s']:.1f} s in all"
    )
    workers = ", ".join(f"{peak:.0f}" for peak in peaks["workers"])
    print(
        f"peak RSS: {peaks['process']:.0f} MiB this process"
        + (f", workers {workers} MiB" if workers else "")
        + f"; cold start {cold['peak_rss_mib']:.0f} MiB"
    )


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
    parser.add_argument(
        "--one-per-field",
        type=int,
        default=0,
        metavar="N",
        help="N fields of one galaxy each (and cold start, peak memory)",
    )
    parser.add_argument("--cold-start", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if args.cold_start:
        print(json.dumps(cold_start(args)))
        return
    if args.one_per_field:
        report_one_per_field(args)
        return
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
        + "".join(
            f", {peak:.0f} MiB (a worker)" for peak in result["worker_peak_rss_mib"]
        )
    )


if __name__ == "__main__":
    main()
