"""A minimal dataset of one ``.npz`` file per galaxy, for tests and small jobs.

Layout::

    DIR/properties.json      {"property_names": [...]}
    DIR/galaxy-00000.npz     images, mask, truth, truth_valid, noise, ...

The production format is the sharded HDF5 of
``picasso_astro.training.dataset``; this exists so that the trainer can be
tested without it. Files are read with ``allow_pickle=False``.
"""

import json
from pathlib import Path

import numpy as np

from ..exceptions import PicassoInputError

__all__ = ["NpzDataset", "open_dataset", "write_npz_dataset"]


class NpzDataset:
    """Map-style dataset over a directory of ``galaxy-*.npz`` files.

    Parameters
    ----------
    directory : str or `~pathlib.Path`
    """

    def __init__(self, directory):
        self.directory = Path(directory)
        meta = self.directory / "properties.json"
        if not meta.is_file():
            msg = f"{self.directory} has no properties.json: not an npz dataset"
            raise PicassoInputError(msg)
        self.property_names = tuple(json.loads(meta.read_text())["property_names"])
        self.paths = sorted(self.directory.glob("galaxy-*.npz"))

    def __len__(self):
        return len(self.paths)

    def __getitem__(self, index):
        with np.load(self.paths[index], allow_pickle=False) as data:
            return {key: data[key] for key in data.files}


def open_dataset(path):
    """Open a directory written by `write_npz_dataset`."""
    return NpzDataset(path)


def write_npz_dataset(directory, items, property_names):
    """Write galaxies (dicts of arrays) as one ``.npz`` each.

    Parameters
    ----------
    directory : str or `~pathlib.Path`
    items : iterable of dict
    property_names : sequence of str

    Returns
    -------
    directory : `~pathlib.Path`
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "properties.json").write_text(
        json.dumps({"property_names": list(property_names)})
    )
    for i, item in enumerate(items):
        np.savez(directory / f"galaxy-{i:05d}.npz", **item)
    return directory
