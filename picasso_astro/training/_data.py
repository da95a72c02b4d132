"""From dataset items to training pairs: key adapter, augmentation, scaling."""

import numpy as np
import torch

from ..exceptions import PicassoInputError
from ..preprocess import to_model_input
from ..properties import PROPERTIES
from ._loss import pixel_weights

__all__ = [
    "TrainingPairs",
    "dataset_property_names",
    "normalize_item",
    "split_indices",
]

# Other spellings of the item keys that are accepted (first match wins).
_ALIASES = {
    "images": ("images", "image", "cube", "data"),
    "mask": ("mask", "bad", "bad_pixels"),
    "truth": ("truth", "targets", "maps"),
    "truth_valid": ("truth_valid", "valid", "target_valid"),
    "noise": ("noise", "sigma", "error"),
    "clean_images": ("clean_images", "clean", "noiseless"),
}


def _get(item, key):
    for alias in _ALIASES[key]:
        if alias in item and item[alias] is not None:
            return item[alias]
    return None


def normalize_item(item, *, index=None):
    """Return one dataset item with the standard keys and types.

    Parameters
    ----------
    item : dict
        A dataset item: ``images`` ``(5, H, W)`` nanomaggies (u, g, r, i, z),
        ``mask`` ``(H, W)`` bool (True = bad), ``truth`` ``(P, H, W)`` log10
        values; optional ``truth_valid`` ``(P, H, W)`` bool, ``noise``
        ``(5, H, W)`` or ``(5,)`` 1-sigma nanomaggies, ``clean_images``
        ``(5, H, W)`` noise-free nanomaggies, and scalars such as
        ``r_half_pix``. Torch tensors are accepted as well as arrays.
    index : int, optional
        The item's index, for error messages.

    Returns
    -------
    item : dict
        With keys ``images``, ``mask``, ``truth``, ``truth_valid`` (or None),
        ``noise`` (or None), ``clean_images`` (or None) and any other keys
        passed through. Non-finite image pixels are added to the mask.
    """
    where = f"dataset item {index}" if index is not None else "dataset item"
    if not isinstance(item, dict):
        msg = f"{where} is a {type(item).__name__}; expected a dict of arrays"
        raise PicassoInputError(msg)

    def array(value, dtype):
        if isinstance(value, torch.Tensor):
            value = value.detach().cpu().numpy()
        return np.asarray(value, dtype=dtype)

    out = dict(item)
    for key in _ALIASES:
        for alias in _ALIASES[key]:
            out.pop(alias, None)
    images = _get(item, "images")
    truth = _get(item, "truth")
    if images is None or truth is None:
        msg = (
            f"{where} lacks 'images' or 'truth' (it has {sorted(item)}); a training "
            "dataset yields dicts with images (5, H, W) and truth (P, H, W)"
        )
        raise PicassoInputError(msg)
    images = array(images, np.float32)
    truth = array(truth, np.float32)
    if images.ndim != 3 or images.shape[0] != 5:
        msg = f"{where}: images must have shape (5, H, W), not {images.shape}"
        raise PicassoInputError(msg)
    shape = images.shape[1:]
    if truth.ndim != 3 or truth.shape[1:] != shape:
        msg = f"{where}: truth must have shape (P, {shape[0]}, {shape[1]}), not "
        msg += f"{truth.shape}"
        raise PicassoInputError(msg)
    mask = _get(item, "mask")
    mask = np.zeros(shape, bool) if mask is None else array(mask, bool)
    if mask.shape != shape:
        msg = f"{where}: mask must have shape {shape}, not {mask.shape}"
        raise PicassoInputError(msg)
    mask = mask | ~np.all(np.isfinite(images), axis=0)
    valid = _get(item, "truth_valid")
    if valid is not None:
        valid = array(valid, bool)
        if valid.shape != truth.shape:
            msg = f"{where}: truth_valid must have shape {truth.shape}"
            raise PicassoInputError(msg)
    noise = _get(item, "noise")
    if noise is not None:
        noise = array(noise, np.float32)
        if noise.shape == (5,):
            noise = noise.reshape(5, 1, 1)
        if noise.shape not in ((5, 1, 1), images.shape):
            msg = f"{where}: noise must have shape (5,) or {images.shape}"
            raise PicassoInputError(msg)
    clean = _get(item, "clean_images")
    if clean is not None:
        clean = array(clean, np.float32)
        if clean.shape != images.shape:
            msg = f"{where}: clean_images must have shape {images.shape}"
            raise PicassoInputError(msg)
    out.update(
        images=images,
        mask=mask,
        truth=truth,
        truth_valid=valid,
        noise=noise,
        clean_images=clean,
    )
    return out


def dataset_property_names(dataset):
    """Return the names of the dataset's truth planes, in order.

    Read from ``dataset.property_names``, else ``dataset.attrs`` or
    ``dataset.manifest["property_names"]`` (the sharded HDF5 datasets).
    """
    names = getattr(dataset, "property_names", None)
    if not names:
        for holder in ("attrs", "manifest"):
            meta = getattr(dataset, holder, None)
            if isinstance(meta, dict) and meta.get("property_names"):
                names = meta["property_names"]
                break
    if not names:
        msg = (
            f"the dataset {type(dataset).__name__} has no property_names; a training "
            "dataset must say which property each truth plane holds"
        )
        raise PicassoInputError(msg)
    return tuple(names)


def split_indices(n, *, val_fraction, seed):
    """Split ``range(n)`` into training and validation indices, reproducibly.

    Parameters
    ----------
    n : int
        Number of galaxies.
    val_fraction : float
        Fraction held out (at least one galaxy when positive and ``n >= 2``).
    seed : int
        Seed of the permutation.

    Returns
    -------
    train, val : list of int
        Sorted indices.
    """
    if not 0 <= val_fraction < 1:
        msg = f"val_fraction must be in [0, 1), not {val_fraction}"
        raise PicassoInputError(msg)
    n_val = round(n * val_fraction)
    if val_fraction > 0 and n >= 2:
        n_val = max(n_val, 1)
    order = np.random.default_rng([seed, 7919]).permutation(n)
    val = sorted(int(i) for i in order[:n_val])
    train = sorted(int(i) for i in order[n_val:])
    return train, val


def _augment(arrays, rng):
    """Apply one random flip/rotation (of the dihedral group) to every array."""
    k = int(rng.integers(4))
    flip = bool(rng.integers(2))
    out = {}
    for key, value in arrays.items():
        if value is None or value.ndim < 2 or value.shape[-2:] == (1, 1):
            out[key] = value
            continue
        if flip:
            value = value[..., ::-1]
        out[key] = np.ascontiguousarray(np.rot90(value, k, axes=(-2, -1)))
    return out


#: The ``owner`` code of pixels dominated by a neighbour that has truth maps
#: (``neighbour_truth``) in the dataset format (see `~picasso_astro.training.dataset`).
NEIGHBOUR_OWNER = 2


def _random_crop(arrays, size, rng):
    """Cut one random ``size`` x ``size`` window out of every 2-D array."""
    ny, nx = arrays["mask"].shape
    if size >= ny and size >= nx:
        return arrays
    y0 = int(rng.integers(max(ny - size, 0) + 1))
    x0 = int(rng.integers(max(nx - size, 0) + 1))
    window = (slice(y0, y0 + size), slice(x0, x0 + size))
    return {
        key: value[(..., *window)]
        if value is not None and value.shape[-2:] == (ny, nx)
        else value
        for key, value in arrays.items()
    }


class TrainingPairs(torch.utils.data.Dataset):
    """Network inputs, truth and loss weights from a dataset of galaxies.

    Each item is a dict of float32 arrays ``x`` ``(6, H', W')`` (the scaling
    of `~picasso_astro.preprocess.to_model_input`), ``truth`` and ``weight``
    ``(P, H', W')`` (see `~picasso_astro.training._loss.pixel_weights`), with
    ``H', W'`` padded up to a multiple of ``multiple`` by masked pixels.

    Pixels flagged in an item's optional ``contaminant`` map (stars and
    unrelated galaxies) keep their flux in ``x`` but get loss weight 0, except
    those of neighbours with truth of their own (``owner`` 2 and
    ``neighbour_truth``), which are trained on it.

    Augmentation is a random element of the dihedral group (flips and
    90-degree rotations) and, where the item has ``clean_images`` and
    ``noise``, a fresh noise draw (else, with ``noise`` only, some added
    noise, see ``extra_noise``). Its random numbers depend only on
    ``(seed, epoch, index)``, so an epoch is reproducible whatever the order,
    number of workers or process.

    Parameters
    ----------
    dataset : `torch.utils.data.Dataset`
        Items as accepted by `normalize_item`.
    property_names : sequence of str
        Properties to train, a subset of ``dataset.property_names``.
    indices : sequence of int, optional
        The dataset items to use (all by default).
    softening : dict of str to float, optional
        asinh softening per band (the model configuration's).
    multiple : int
        Pad sizes to a multiple of this.
    augment : bool
        Apply random flips/rotations and noise re-draws.
    seed : int
        Seed of the augmentation.
    sky_weight : float
        See `~picasso_astro.training._loss.pixel_weights`.
    extra_noise : float
        For items without ``clean_images`` but with ``noise``: add fresh noise
        of ``f * noise`` with ``f`` uniform in ``[0, extra_noise]`` (the image
        keeps its own noise, so this lowers the S/N a little).
    brightness : float
        Scale each galaxy's images by ``10**d``, ``d`` uniform in
        ``[-brightness, brightness]``, and add ``d`` to its surface-density
        truth (the same galaxy with more or less mass at the same distance);
        a dimmed image gets noise added back up to its own sky noise. 0: off.
    balance : float
        Rarity weighting of the loss (see
        `~picasso_astro.training._loss.pixel_weights`).
    bin_edges : dict of str to sequence of float, optional
        The model's bins, counted by ``balance``.
    crop : int
        With ``augment``: a random ``crop`` x ``crop`` window of each item
        (0 or at least the image size: whole images).
    """

    def __init__(
        self,
        dataset,
        property_names,
        *,
        indices=None,
        softening=None,
        multiple=1,
        augment=False,
        seed=0,
        sky_weight=0.1,
        extra_noise=0.0,
        brightness=0.0,
        balance=0.0,
        bin_edges=None,
        crop=0,
    ):
        self.dataset = dataset
        self.property_names = tuple(property_names)
        available = dataset_property_names(dataset)
        missing = [name for name in self.property_names if name not in available]
        if missing:
            msg = (
                f"the dataset has no truth for {', '.join(missing)} (it has "
                f"{', '.join(available)}); choose properties the dataset provides"
            )
            raise PicassoInputError(msg)
        self.planes = [available.index(name) for name in self.property_names]
        self.indices = list(range(len(dataset)) if indices is None else indices)
        self.softening = softening
        self.multiple = int(multiple)
        self.augment = augment
        self.seed = int(seed)
        self.sky_weight = float(sky_weight)
        self.extra_noise = float(extra_noise)
        self.brightness = float(brightness)
        self.balance = float(balance)
        self.bin_edges = bin_edges
        self.crop = int(crop)
        self.extensive = np.array(
            [PROPERTIES[name].surface_density for name in self.property_names]
        )
        self.epoch = 0

    def set_epoch(self, epoch):
        """Choose the epoch whose augmentation draws are used."""
        self.epoch = int(epoch)

    def __len__(self):
        return len(self.indices)

    def __getitem__(self, i):
        index = self.indices[i]
        item = normalize_item(self.dataset[index], index=index)
        truth = item["truth"][self.planes]
        valid = item["truth_valid"]
        if valid is not None:
            valid = valid[self.planes]
        images, mask = item["images"], item["mask"]
        contaminant = item.get("contaminant")
        contaminant = None if contaminant is None else np.asarray(contaminant, bool)
        truth, valid, contaminant = self._with_neighbours(
            item, truth, valid, contaminant
        )
        if self.augment:
            rng = np.random.default_rng([self.seed, self.epoch, index])
            noise = item["noise"]
            if noise is not None and item["clean_images"] is not None:
                draw = rng.standard_normal(images.shape).astype(np.float32)
                images = item["clean_images"] + noise * draw
            elif noise is not None and self.extra_noise > 0:
                scale = np.float32(rng.uniform(0, self.extra_noise))
                draw = rng.standard_normal(images.shape).astype(np.float32)
                images = images + scale * noise * draw
            if self.brightness > 0:
                images, truth = self._scale_brightness(images, truth, noise, rng)
            arrays = _augment(
                {
                    "images": images,
                    "mask": mask,
                    "truth": truth,
                    "valid": valid,
                    "contaminant": contaminant,
                },
                rng,
            )
            if self.crop:
                arrays = _random_crop(arrays, self.crop, rng)
            images, mask = arrays["images"], arrays["mask"]
            truth, valid = arrays["truth"], arrays["valid"]
            contaminant = arrays["contaminant"]
        loss_mask = mask if contaminant is None else mask | contaminant
        weight = pixel_weights(
            truth,
            valid,
            loss_mask,
            self.property_names,
            sky_weight=self.sky_weight,
            balance=self.balance,
            bin_edges=self.bin_edges,
        )
        x = to_model_input(images, mask, softening=self.softening)
        ny, nx = mask.shape
        pad_y, pad_x = -ny % self.multiple, -nx % self.multiple
        if pad_y or pad_x:
            pad = ((0, 0), (0, pad_y), (0, pad_x))
            x = np.pad(x, pad)  # zeros, validity channel 0: masked
            truth = np.pad(np.nan_to_num(truth), pad)
            weight = np.pad(weight, pad)
        return {
            "x": np.ascontiguousarray(x, dtype=np.float32),
            "truth": np.ascontiguousarray(np.nan_to_num(truth), dtype=np.float32),
            "weight": np.ascontiguousarray(weight, dtype=np.float32),
        }

    def _with_neighbours(self, item, truth, valid, contaminant):
        """Neighbours that have truth of their own train on it, not with weight 0."""
        owner, theirs = item.get("owner"), item.get("neighbour_truth")
        if owner is None or theirs is None:
            return truth, valid, contaminant
        neighbour = np.asarray(owner) == NEIGHBOUR_OWNER
        if not neighbour.any():
            return truth, valid, contaminant
        theirs = np.asarray(theirs, np.float32)[self.planes]
        their_valid = item.get("neighbour_truth_valid")
        their_valid = (
            np.isfinite(theirs)
            if their_valid is None
            else np.asarray(their_valid, bool)[self.planes] & np.isfinite(theirs)
        )
        if valid is None:
            valid = np.isfinite(truth)
        truth = np.where(neighbour, theirs, truth)
        valid = np.where(neighbour, their_valid, valid)
        if contaminant is not None:
            contaminant = contaminant & ~neighbour
        return truth, valid, contaminant

    def _scale_brightness(self, images, truth, noise, rng):
        dex = rng.uniform(-self.brightness, self.brightness)
        factor = np.float32(10.0**dex)
        images = images * factor
        if noise is not None and factor < 1:
            draw = rng.standard_normal(images.shape).astype(np.float32)
            images = images + np.sqrt(1 - factor**2) * noise * draw
        truth = truth.copy()
        truth[self.extensive] += np.float32(dex)
        return images, truth
