"""Sharded training datasets: five-band images with per-pixel truth maps.

One format serves every source of training pairs: mock galaxies
(`picasso_astro.training.mocks`) and, later, real SDSS images with IFU maps as
targets. A dataset is a directory::

    DIR/dataset.json        manifest: kind, seed, size, shard size, attrs
    DIR/shard-00000.h5      galaxies 0 .. shard_size - 1
    DIR/shard-00001.h5      ...

HDF5 (h5py) was chosen over zarr and npz: one self-describing file per shard
with attributes, chunked per galaxy so a data loader reads one galaxy without
loading the shard, compound tables for parameters, no extra dependency beyond
h5py, and readable from any language. Shards are written to a temporary name
and renamed when complete, so an interrupted run leaves only whole shards and
can resume.

Each shard holds ``N`` galaxies of ``H x W`` pixels:

=========================  ==============  ========  ===================================
dataset                    shape           dtype     content
=========================  ==============  ========  ===================================
``images``                 (N, 5, H, W)    float32   sky-subtracted flux per pixel in
                                                     nanomaggies, bands u, g, r, i, z
``noise_level``            (N, 5)          float32   one-sigma sky noise per pixel, nmgy
``poisson_scale``          (N, 5)          float32   source variance per nmgy of flux:
                                                     ``var = noise_level^2 + max(model,
                                                     0) * poisson_scale``
``mask``                   (N, H, W)       bool      True on unusable pixels (any band)
``contaminant``            (N, H, W)       bool      True where stars or unrelated
                                                     galaxies dominate
``truth``                  (N, P, H, W)    float32   log10 property maps, order and
                                                     units of
                                                     ``attrs["property_names"]`` /
                                                     ``["property_units"]``
``truth_valid``            (N, P, H, W)    bool      False on floor/fill values
``psf``                    (N, 5, K, K)    float32   PSF image per band (sums to 1)
``owner``                  (N, H, W)       uint8     optional (format 2): which source
                                                     dominates a pixel: 0 sky, 1 target,
                                                     2 neighbour with truth, 3 source
                                                     without truth
``neighbour_truth``        (N, P, H, W)    float32   optional (format 2): truth of
                                                     neighbours, apart from ``truth``
``neighbour_truth_valid``  (N, P, H, W)    bool      optional (format 2)
``index``                  (N,)            int64     galaxy index within the dataset
``params``                 (N,)            compound  every scalar generator parameter
``extras``                 (N,)            str       JSON: lists (stars, clumps, ...)
=========================  ==============  ========  ===================================

Attributes (shard and manifest): ``kind``, ``format_version``, ``pixel_scale``
(arcsec), ``bands``, ``property_names``, ``property_units``, ``seed``,
``generator_version``, ``first_index``, ``count``.

``images`` are stored uncompressed (noisy floats barely compress: lzf saved
15 % of the size and cost 15 % of the generation speed); truth and masks are
lzf-compressed. A 256 x 256 galaxy takes about 1.7 MB.

Fluxes are stored unscaled; the model's input scaling
(`picasso_astro.preprocess.to_model_input`) is applied when training.
"""

import json
import os
import shlex
from pathlib import Path

import numpy as np

from ..exceptions import PicassoInputError
from ..images import BANDS, PIXEL_SCALE
from ..properties import PROPERTIES

__all__ = [
    "FORMAT_VERSION",
    "CombinedDataset",
    "ShardWriter",
    "ShardedDataset",
    "base_attrs",
    "read_manifest",
    "shard_path",
    "write_manifest",
]

FORMAT_VERSION = 2
MANIFEST = "dataset.json"


#: Per-galaxy arrays of a shard, written and read under these names.
_ARRAY_KEYS = (
    "images",
    "noise_level",
    "poisson_scale",
    "mask",
    "contaminant",
    "truth",
    "truth_valid",
    "psf",
    "index",
)

#: Per-galaxy arrays a shard may lack (format 1 shards, datasets without
#: neighbours): read when present.
_OPTIONAL_KEYS = ("owner", "neighbour_truth", "neighbour_truth_valid")


def base_attrs():
    """Attributes every dataset carries: bands, pixel scale, property names/units.

    Returns
    -------
    attrs : dict
    """
    return {
        "format_version": FORMAT_VERSION,
        "pixel_scale": PIXEL_SCALE,
        "bands": list(BANDS),
        "property_names": list(PROPERTIES),
        "property_units": [str(prop.unit) for prop in PROPERTIES.values()],
    }


def shard_path(directory, number):
    """Path of shard ``number`` in ``directory``."""
    return Path(directory) / f"shard-{number:05d}.h5"


def write_manifest(directory, manifest):
    """Write ``dataset.json`` atomically."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    tmp = directory / f".{MANIFEST}.tmp"
    tmp.write_text(json.dumps(manifest, indent=2, sort_keys=True))
    os.replace(tmp, directory / MANIFEST)


def read_manifest(directory):
    """Read ``dataset.json``; None if the directory holds no dataset."""
    path = Path(directory) / MANIFEST
    if not path.is_file():
        return None
    return json.loads(path.read_text())


class ShardWriter:
    """Write one shard galaxy by galaxy; the file appears only when complete.

    Parameters
    ----------
    path : path-like
        Final shard path; data go to a temporary file beside it until `close`.
    count : int
        Number of galaxies in the shard.
    image_shape : tuple of int
        ``(H, W)``.
    param_names : sequence of str
        Fields of the ``params`` table, in order.
    attrs : dict
        Shard attributes (JSON-able values).
    psf_size : int
        Side of the stored PSF images.
    optional : sequence of str
        Optional arrays (``owner``, ``neighbour_truth``,
        ``neighbour_truth_valid``) every record of the shard carries.
    """

    def __init__(
        self,
        path,
        count,
        image_shape,
        param_names,
        *,
        attrs,
        psf_size=41,
        optional=(),
    ):
        import h5py

        self.path = Path(path)
        self.tmp = self.path.with_name(f".{self.path.name}.tmp")
        self.count = count
        self.param_names = list(param_names)
        ny, nx = image_shape
        n_props = len(PROPERTIES)
        self.file = h5py.File(self.tmp, "w")
        for key, value in attrs.items():
            if value is None:
                continue
            self.file.attrs[key] = (
                json.dumps(value) if isinstance(value, dict) else value
            )
        compress = {"compression": "lzf", "shuffle": True}
        create = self.file.create_dataset
        create("images", (count, 5, ny, nx), "f4", chunks=(1, 5, ny, nx))
        create("noise_level", (count, 5), "f4")
        create("poisson_scale", (count, 5), "f4")
        create("mask", (count, ny, nx), bool, chunks=(1, ny, nx), **compress)
        create("contaminant", (count, ny, nx), bool, chunks=(1, ny, nx), **compress)
        create(
            "truth",
            (count, n_props, ny, nx),
            "f4",
            chunks=(1, n_props, ny, nx),
            **compress,
        )
        create(
            "truth_valid",
            (count, n_props, ny, nx),
            bool,
            chunks=(1, n_props, ny, nx),
            **compress,
        )
        create(
            "psf",
            (count, 5, psf_size, psf_size),
            "f4",
            chunks=(1, 5, psf_size, psf_size),
        )
        create("index", (count,), "i8")
        self.optional = [key for key in _OPTIONAL_KEYS if key in optional]
        planes = {
            "owner": ((count, ny, nx), "u1"),
            "neighbour_truth": ((count, n_props, ny, nx), "f4"),
            "neighbour_truth_valid": ((count, n_props, ny, nx), bool),
        }
        for key in self.optional:
            shape, dtype = planes[key]
            create(key, shape, dtype, chunks=(1, *shape[1:]), **compress)
        dtype = np.dtype([(name, "f8") for name in self.param_names])
        create("params", (count,), dtype)
        create("extras", (count,), h5py.string_dtype())

    def write(self, slot, record):
        """Store galaxy ``record`` (a dict, see the module docstring) at ``slot``."""
        f = self.file
        for key in (*_ARRAY_KEYS, *self.optional):
            f[key][slot] = record[key]
        row = np.zeros((), dtype=f["params"].dtype)
        for name in self.param_names:
            row[name] = record["params"].get(name, np.nan)
        f["params"][slot] = row
        f["extras"][slot] = json.dumps(record.get("extras", {}))

    def close(self):
        """Finish the file and move it to its final name."""
        self.file.close()
        os.replace(self.tmp, self.path)

    def abort(self):
        """Drop the partial file."""
        self.file.close()
        self.tmp.unlink(missing_ok=True)

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is None:
            self.close()
        else:
            self.abort()


def _locate(index, offsets):
    """Return ``(part, index in it)`` of galaxy ``index``, parts at ``offsets``."""
    total = int(offsets[-1])
    if not -total <= index < total:
        msg = f"index {index} is out of range for a dataset of {total} galaxies"
        raise IndexError(msg)
    index = index % total
    number = int(np.searchsorted(offsets, index, side="right") - 1)
    return number, int(index - offsets[number])


class ShardedDataset:
    """Read a sharded dataset galaxy by galaxy (a map-style torch dataset).

    Parameters
    ----------
    directory : path-like
        A directory written by `ShardWriter` with a ``dataset.json``.
    in_memory : bool
        Read every shard whole into memory first (about 0.6 MB a galaxy of
        128 x 128 pixels), so that galaxies then come from memory, not from
        HDF5 reads: for data loaders feeding a GPU. Forked loader workers
        share the arrays.

    Examples
    --------
    >>> data = ShardedDataset("mocks/")  # doctest: +SKIP
    >>> item = data[0]  # doctest: +SKIP
    >>> item["images"].shape, item["truth"].shape  # doctest: +SKIP
    ((5, 256, 256), (7, 256, 256))
    """

    def __init__(self, directory, *, in_memory=False):
        import h5py

        self.directory = Path(directory)
        self.manifest = read_manifest(self.directory)
        if self.manifest is None:
            msg = (
                f"{self.directory} holds no dataset ({MANIFEST} is missing); "
                "write one first"
            )
            raise PicassoInputError(msg)
        self.paths = sorted(self.directory.glob("shard-*.h5"))
        self._check_shards_present()
        counts = []
        for path in self.paths:
            try:
                with h5py.File(path, "r") as f:
                    counts.append(int(f.attrs["count"]))
            except (OSError, KeyError) as exc:
                # What `picasso-train mocks` takes for a shard to write again.
                msg = (
                    f"{path}: the shard file is truncated or damaged and cannot be "
                    f"read ({exc}); regenerate it: {self._remedy(rewrites=True)}"
                )
                raise PicassoInputError(msg) from None
        self.offsets = np.concatenate([[0], np.cumsum(counts)]).astype(int)
        self._files = {}
        self._pid = None
        self._memory = None
        if in_memory:
            self._memory = [self._read_whole(n) for n in range(len(self.paths))]
            self.close()

    def _read_whole(self, number):
        import h5py

        try:
            f = self._file(number)
            return {key: f[key][:] for key in f if isinstance(f[key], h5py.Dataset)}
        except OSError as exc:
            raise self._damaged(number, "the shard", exc) from None

    def _damaged(self, number, what, exc):
        """Return the error for a shard file that cannot be read."""
        msg = (
            f"{self.paths[number]}: {what} cannot be read ({exc}): the file is "
            f"damaged; {self._remedy(rewrites=False)}"
        )
        return PicassoInputError(msg)

    def _shard(self, number):
        """Return the shard's arrays: in memory if read whole, else its open file."""
        return self._file(number) if self._memory is None else self._memory[number]

    def _remedy(self, *, rewrites):
        """Say how to write the dataset's missing or damaged shards again."""
        manifest = self.manifest
        if manifest.get("kind") != "mocks" or "n" not in manifest:
            return "write it again with the tool that wrote this dataset"
        command = (
            f"picasso-train mocks -o {shlex.quote(str(self.directory))} "
            f"--n {manifest['n']} "
            f"--seed {manifest['seed']} --size {manifest['size']} "
            f"--shard-size {manifest['shard_size']}"
        )
        switches = manifest.get("preprocessing", {})
        for key in ("background", "match_psf", "mask_sources"):
            if switches.get(key) is False:
                command += f" --no-{key.replace('_', '-')}"
        if manifest.get("population", "default") != "default":
            command += f" --population {manifest['population']}"
        if manifest.get("sky_frames"):
            command += f" --sky-frames {shlex.quote(manifest['sky_frames'])}"
        if rewrites:
            return (
                f"run `{command}` again (it writes the missing and unreadable "
                "shards and keeps the complete ones)"
            )
        return f"delete it and run `{command}` (it keeps the complete shards)"

    def _check_shards_present(self):
        """Refuse a mock dataset whose run stopped before all shards were written."""
        n, size = self.manifest.get("n"), self.manifest.get("shard_size")
        if self.manifest.get("kind") != "mocks" or n is None or size is None:
            return
        expected = [shard_path(self.directory, k) for k in range(-(-n // size))]
        missing = [path.name for path in expected if path not in self.paths]
        if missing:
            shown = ", ".join(missing[:3]) + (" ..." if len(missing) > 3 else "")
            msg = (
                f"{self.directory}: the dataset is incomplete: {len(missing)} of "
                f"{len(expected)} shards are missing ({shown}), as after an "
                f"interrupted run; finish it: {self._remedy(rewrites=True)}"
            )
            raise PicassoInputError(msg)

    @property
    def attrs(self):
        """dict: the manifest (seed, size, bands, property names and units...)."""
        return self.manifest

    def __len__(self):
        return int(self.offsets[-1])

    def _file(self, number):
        import h5py

        if self._pid != os.getpid():  # h5py handles must not cross a fork
            self._files = {}
            self._pid = os.getpid()
        if number not in self._files:
            self._files[number] = h5py.File(self.paths[number], "r")
        return self._files[number]

    def _locate(self, index):
        return _locate(index, self.offsets)

    def __getitem__(self, index):
        """Return galaxy ``index`` as a dict of arrays (see the module docstring).

        ``noise`` is the per-pixel noise map rebuilt from ``noise_level`` and
        ``poisson_scale`` with the observed flux standing in for the model.
        """
        number, slot = self._locate(index)
        try:
            f = self._shard(number)
            item = {key: f[key][slot] for key in _ARRAY_KEYS}
            item.update({key: f[key][slot] for key in _OPTIONAL_KEYS if key in f})
            row = f["params"][slot]
            extras = f["extras"][slot]
        except OSError as exc:
            raise self._damaged(number, f"galaxy {slot} of this shard", exc) from None
        item["params"] = {name: float(row[name]) for name in row.dtype.names}
        item["extras"] = json.loads(
            extras.decode() if isinstance(extras, bytes) else extras
        )
        level = item["noise_level"][:, None, None]
        scale = item["poisson_scale"][:, None, None]
        item["noise"] = np.sqrt(
            level**2 + np.maximum(item["images"], 0) * scale
        ).astype(np.float32)
        return item

    def params_table(self):
        """All galaxies' parameters as one `~astropy.table.Table`."""
        from astropy.table import Table, vstack

        tables = [Table(self._shard(n)["params"][:]) for n in range(len(self.paths))]
        return vstack(tables) if tables else Table()

    def close(self):
        """Close open shard files."""
        for f in self._files.values():
            f.close()
        self._files = {}

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


#: Manifest entries that must agree for datasets to be trained on together.
_MUST_AGREE = ("bands", "pixel_scale", "property_names", "preprocessing")


class CombinedDataset:
    """Several datasets trained on as one, e.g. mocks made at two sizes.

    Galaxy ``i`` of the whole is galaxy ``i`` of the first dataset, then those
    of the second follow, and so on. The datasets must hold the same bands,
    pixel scale, properties and preparation; their images may differ in size
    (train on crops no larger than the smallest, ``crop``).

    Parameters
    ----------
    datasets : sequence
        Datasets with an ``attrs`` manifest (`ShardedDataset`).

    Raises
    ------
    PicassoInputError
        If the datasets do not agree on what they hold.
    """

    def __init__(self, datasets):
        self.parts = list(datasets)
        if not self.parts:
            msg = "no datasets to combine; give at least one"
            raise PicassoInputError(msg)
        first = _described(self.parts[0])
        for part in self.parts[1:]:
            theirs = _described(part)
            for key in _MUST_AGREE:
                if theirs.get(key) != first.get(key):
                    msg = (
                        f"{_name(part)} and {_name(self.parts[0])} differ in "
                        f"{key} ({theirs.get(key)!r} against "
                        f"{first.get(key)!r}); train only on datasets made alike"
                    )
                    raise PicassoInputError(msg)
        self.offsets = np.cumsum([0] + [len(part) for part in self.parts])
        self.directories = [getattr(part, "directory", None) for part in self.parts]
        self._sides = [_side(part) for part in self.parts]

    @property
    def attrs(self):
        """dict: the first dataset's manifest, with the total count and every size."""
        sizes = sorted(set(self._sides))
        return dict(_described(self.parts[0]), n=len(self), sizes=sizes)

    def image_sizes(self):
        """Return each galaxy's image side, one entry per galaxy."""
        return np.repeat(self._sides, np.diff(self.offsets)).astype(int)

    def __len__(self):
        return int(self.offsets[-1])

    def __getitem__(self, index):
        number, slot = _locate(index, self.offsets)
        return self.parts[number][slot]

    def close(self):
        """Close every dataset's open files."""
        for part in self.parts:
            getattr(part, "close", lambda: None)()


def _described(dataset):
    """Return a dataset's manifest, with its property names however given."""
    manifest = dict(getattr(dataset, "attrs", None) or {})
    names = getattr(dataset, "property_names", None) or manifest.get("property_names")
    manifest["property_names"] = list(names) if names else None
    return manifest


def _name(dataset):
    return str(getattr(dataset, "directory", type(dataset).__name__))


def _side(dataset):
    size = _described(dataset).get("size")
    if size is None:
        size = max(np.shape(dataset[0]["images"])[-2:])
    return int(size)
