"""Write a sharded mock dataset (the ``picasso-train mocks`` command)."""

import functools
from concurrent.futures import ProcessPoolExecutor, as_completed

import numpy as np

from ...exceptions import PicassoInputError
from ...images import BANDS
from ...preprocess import PreparationOptions, prepare_target
from ..dataset import ShardWriter, base_attrs, read_manifest, shard_path, write_manifest
from ._core import GENERATOR_VERSION, galaxy_seed, make_mock
from ._kinds import POPULATIONS
from ._sky import open_sky_frames

__all__ = ["mock_record", "write_mock_dataset"]

#: Arrays of a `Mock` stored when it has them (shard format 2).
OPTIONAL_RECORD_KEYS = ("owner", "neighbour_truth", "neighbour_truth_valid")


def mock_record(mock, index, options=None):
    """Turn a `Mock` into the record that a `ShardWriter` stores.

    The mock is prepared by `~picasso_astro.preprocess.prepare_target` with
    ``options`` (`~picasso_astro.preprocess.PreparationOptions`, defaults if
    omitted), the function that prepares real galaxies for the model.
    """
    prepared = prepare_target(mock.images, options=options, name=f"mock {index}")
    cube, mask = prepared.cube()
    return {
        "images": cube,
        "mask": mask,
        "noise_level": [mock.params[f"sky_noise_{b}"] for b in BANDS],
        "poisson_scale": [mock.params[f"poisson_scale_{b}"] for b in BANDS],
        "contaminant": mock.contaminant,
        "truth": mock.truth,
        "truth_valid": mock.truth_valid,
        "psf": np.stack([mock.images[b].psf for b in BANDS]),
        "index": index,
        "params": mock.params,
        "extras": mock.extras,
        **{
            key: getattr(mock, key)
            for key in OPTIONAL_RECORD_KEYS
            if getattr(mock, key) is not None
        },
    }


def _write_shard(
    directory,
    number,
    first,
    count,
    *,
    seed,
    size,
    attrs,
    options,
    population="default",
    sky_frames=None,
    on_galaxy=None,
):
    path = shard_path(directory, number)
    sky = None if sky_frames is None else open_sky_frames(sky_frames)
    writer = None
    try:
        for slot in range(count):
            index = first + slot
            mock = make_mock(
                galaxy_seed(seed, index), size=size, population=population, sky=sky
            )
            record = mock_record(mock, index, options)
            if writer is None:
                shard_attrs = dict(attrs, first_index=first, count=count)
                psf_size = mock.images["r"].psf.shape[0]
                writer = ShardWriter(
                    path,
                    count,
                    (size, size),
                    list(mock.params),
                    attrs=shard_attrs,
                    psf_size=psf_size,
                    optional=[k for k in OPTIONAL_RECORD_KEYS if k in record],
                )
            writer.write(slot, record)
            if on_galaxy is not None:
                on_galaxy()
    except BaseException:
        if writer is not None:
            writer.abort()
        raise
    writer.close()
    return count


def _shard_done(path, count):
    import h5py

    if not path.is_file():
        return False
    try:
        with h5py.File(path, "r") as f:
            return int(f.attrs["count"]) == count
    except OSError:
        return False


def write_mock_dataset(
    directory,
    n,
    *,
    seed,
    size=256,
    shard_size=256,
    workers=1,
    preprocessing=None,
    population="default",
    sky_frames=None,
    progress=True,
):
    """Generate ``n`` mocks into sharded HDF5 files; resumes an interrupted run.

    Galaxy ``i`` is `make_mock` of `galaxy_seed` ``(seed, i)``, so the dataset is
    the same for a seed whatever the sharding, the number of workers or the
    interruptions. Complete shards already on disk are kept.

    Parameters
    ----------
    directory : path-like
        Output directory (created).
    n : int
        Number of galaxies.
    seed : int
        Dataset seed.
    size : int
        Image side in pixels.
    shard_size : int
        Galaxies per shard file.
    workers : int
        Processes generating shards in parallel.
    preprocessing : dict or `~picasso_astro.preprocess.PreparationOptions`, optional
        How each mock is prepared (`~picasso_astro.preprocess.prepare_target`);
        the defaults of `~picasso_astro.preprocess.PreparationOptions` if
        omitted. Recorded in ``dataset.json``; the trainer copies it into the
        model's ``config.json``, so that `~picasso_astro.predict` prepares
        real galaxies the same way.
    population : str
        Population mix: ``"default"`` for training, ``"shift"`` (other
        rates of the rare kinds) for a test set off the training
        distribution (`~picasso_astro.training.mocks.POPULATIONS`).
    sky_frames : path-like, optional
        Directory of real SDSS corrected frames (all five bands of a field,
        searched recursively): mocks are rendered into blank-sky positions
        of them instead of Gaussian sky. Read in place, never copied.
    progress : bool
        Show a progress bar (tqdm).

    Returns
    -------
    written : int
        Galaxies generated in this call (not counting resumed shards).

    Raises
    ------
    PicassoInputError
        For bad numbers or options, or when ``directory`` holds a dataset made
        with another seed, size, shard size, preprocessing or generator version.
    """
    from tqdm.auto import tqdm

    options = PreparationOptions.from_dict(preprocessing)
    if population not in POPULATIONS:
        msg = f"unknown population {population!r}; use one of {', '.join(POPULATIONS)}"
        raise PicassoInputError(msg)
    if sky_frames is not None:
        sky_frames = str(open_sky_frames(sky_frames).directory)

    for name, value, low in (
        ("n", n, 1),
        ("shard_size", shard_size, 1),
        ("workers", workers, 1),
    ):
        if int(value) < low:
            msg = f"{name} must be at least {low}, got {value}"
            raise PicassoInputError(msg)
    manifest = {
        "kind": "mocks",
        "seed": int(seed),
        "size": int(size),
        "shard_size": int(shard_size),
        "generator_version": GENERATOR_VERSION,
        "preprocessing": options.recorded(),
        "population": population,
        "sky_frames": sky_frames,
        **base_attrs(),
    }
    existing = read_manifest(directory)
    if existing is not None:
        changed = [k for k in manifest if existing.get(k) != manifest[k]]
        if changed:
            msg = (
                f"{directory} already holds a dataset made with different "
                f"{', '.join(changed)}; choose another output directory or delete it"
            )
            raise PicassoInputError(msg)
    manifest["n"] = int(n)
    write_manifest(directory, manifest)
    attrs = {k: v for k, v in manifest.items() if k != "n"}
    todo = []
    for number, first in enumerate(range(0, n, shard_size)):
        count = min(shard_size, n - first)
        if not _shard_done(shard_path(directory, number), count):
            todo.append((number, first, count))
    done = n - sum(count for *_, count in todo)
    bar = tqdm(total=n, initial=done, unit="gal", disable=not progress, desc="mocks")
    written = 0
    write = functools.partial(
        _write_shard,
        directory,
        seed=seed,
        size=size,
        attrs=attrs,
        options=options,
        population=population,
        sky_frames=sky_frames,
    )
    try:
        if workers == 1:
            for number, first, count in todo:
                written += write(number, first, count, on_galaxy=lambda: bar.update(1))
        else:
            with ProcessPoolExecutor(max_workers=workers) as pool:
                futures = [
                    pool.submit(write, number, first, count)
                    for number, first, count in todo
                ]
                for future in as_completed(futures):
                    count = future.result()
                    written += count
                    bar.update(count)
    finally:
        bar.close()
    return written
