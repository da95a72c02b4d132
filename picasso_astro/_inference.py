"""Running the network: device, tiling, batch size from free memory, precision."""

from numbers import Integral

import numpy as np

from ._memory import available_memory
from .exceptions import PicassoInputError

__all__ = [
    "AUTO_BATCH_LIMIT",
    "DEFAULT_TILE_SIZE",
    "auto_batch_size",
    "check_batch_size",
    "free_memory",
    "resolve_device",
    "resolve_precision",
    "run_network",
]

#: Images larger than this on a side are processed in overlapping tiles.
DEFAULT_TILE_SIZE = 512
#: Pixels discarded at each inner tile edge, where the network sees no context.
TILE_MARGIN = 32

#: Largest batch ``batch_size="auto"`` chooses.
AUTO_BATCH_LIMIT = 64
#: Share of the free memory that the activations of a batch may take.
MEMORY_SAFETY = 0.25
#: On CPU, largest tensor of a batch. glibc serves larger blocks with fresh
#: pages on every allocation (its mmap threshold is at most 32 MiB), and the page
#: faults halved the forward speed at 256 x 256 with batches of 8.
CPU_TENSOR_LIMIT = 16 * 2**20
PRECISIONS = ("auto", "float32", "bfloat16")


def free_memory(device):
    """Bytes of memory free for tensors on ``device``.

    Parameters
    ----------
    device : `torch.device`

    Returns
    -------
    free : int or None
        Free GPU memory on CUDA; on CPU the available RAM (``psutil`` if
        installed, else ``MemAvailable`` of ``/proc/meminfo``); None when unknown.
    """
    import torch

    if device.type == "cuda":
        return torch.cuda.mem_get_info(device)[0]
    return available_memory()


def _level_channels(network):
    """Channels of each encoder level, from the network's convolutions."""
    return [block[0].out_channels for block in network.encoder]


def activation_bytes(network, image_shape):
    """Estimate the float32 activation memory of one galaxy in a forward pass.

    Parameters
    ----------
    network : `~picasso_astro.model.PicassoUNet`
    image_shape : tuple of int
        ``(ny, nx)`` of the network input (before padding).

    Returns
    -------
    per_galaxy, largest : int
        Bytes held at the peak of the forward pass, and bytes of its largest
        single tensor.
    """
    ny, nx = (-(-n // network.multiple) * network.multiple for n in image_shape[-2:])
    widths = _level_channels(network)
    bins = max(head.n_bins for head in network.heads.values())
    n_props = len(network.property_names)
    # Skips of every level stay alive; at the top level the decoder holds the
    # concatenation, a convolution output and its normalisation, then the heads.
    skips = sum(w / 4**level for level, w in enumerate(widths))
    working = max(4 * widths[0], network.in_channels + 2 * n_props + 10 * bins)
    per_pixel = 4 * (skips + working)
    return int(per_pixel * ny * nx), 4 * 2 * widths[0] * ny * nx


def auto_batch_size(network, image_shape, device, *, limit=AUTO_BATCH_LIMIT):
    """Choose how many galaxies to run through the network at once.

    Parameters
    ----------
    network : `~picasso_astro.model.PicassoUNet`
    image_shape : tuple of int
        ``(ny, nx)`` of one network input (a tile for tiled images).
    device : `torch.device`
    limit : int
        Largest batch returned.

    Returns
    -------
    batch_size : int
        ``MEMORY_SAFETY`` of the free memory (`free_memory`) divided by the
        estimated activation memory of one galaxy, clipped to ``[1, limit]``. On
        CPU also no more than keeps each tensor within ``CPU_TENSOR_LIMIT``.
    """
    per_galaxy, largest = activation_bytes(network, image_shape)
    free = free_memory(device)
    batch = limit if free is None else int(MEMORY_SAFETY * free // per_galaxy)
    if device.type == "cpu":
        batch = min(batch, CPU_TENSOR_LIMIT // largest)
    return max(1, min(batch, limit))


def resolve_precision(precision, device):
    """Return the dtype to compute the forward pass in.

    Parameters
    ----------
    precision : {"auto", "float32", "bfloat16"}
        ``"auto"``: bfloat16 on CUDA GPUs that support it, float32 elsewhere (on
        CPU bfloat16 moved the maps by up to 0.2 dex).
    device : `torch.device`

    Returns
    -------
    dtype : `torch.dtype`
    """
    import torch

    if precision not in PRECISIONS:
        choices = ", ".join(map(repr, PRECISIONS))
        msg = f"precision must be one of {choices}, not {precision!r}"
        raise ValueError(msg)
    if precision == "auto":
        cuda_bf16 = device.type == "cuda" and torch.cuda.is_bf16_supported()
        return torch.bfloat16 if cuda_bf16 else torch.float32
    if precision == "bfloat16" and device.type != "cuda":
        msg = "precision='bfloat16' is only supported on CUDA devices"
        raise ValueError(msg)
    return getattr(torch, precision)


def resolve_device(device="auto"):
    """Return the `torch.device` to run on.

    Parameters
    ----------
    device : str or `torch.device`
        ``"auto"`` (CUDA when available, else CPU), ``"cpu"``, ``"cuda"``,
        ``"cuda:1"``, ...
    """
    import torch

    if isinstance(device, torch.device):
        return device
    if device is None or device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(device)
    except (RuntimeError, TypeError):
        msg = f"unknown device {device!r}; use 'auto', 'cpu' or 'cuda'"
        raise PicassoInputError(msg) from None
    if device.type == "cuda" and not torch.cuda.is_available():
        msg = "device 'cuda' was asked for but no CUDA GPU is available; use 'cpu'"
        raise PicassoInputError(msg)
    return device


def _tile_starts(length, tile, step):
    if length <= tile:
        return [0]
    starts = list(range(0, length - tile, step))
    starts.append(length - tile)
    return starts


def run_network(
    network,
    x,
    *,
    device,
    tile_size=DEFAULT_TILE_SIZE,
    batch_size="auto",
    precision="auto",
):
    """Run the network on a batch of model inputs of one size.

    Parameters
    ----------
    network : `~picasso_astro.model.PicassoUNet`
    x : `~numpy.ndarray`
        Shape ``(n, channels, ny, nx)``, float32.
    device : `torch.device`
    tile_size : int
        Larger images are cut into overlapping tiles of this size, and only the
        inner part of each tile (``TILE_MARGIN`` pixels in from inner edges) is
        kept.
    batch_size : int or "auto"
        Inputs run through the network together; ``"auto"`` chooses from the
        free memory (`~picasso_astro._inference.auto_batch_size`).
    precision : {"auto", "float32", "bfloat16"}
        Precision of the convolutions: ``"auto"`` is bfloat16 autocast on CUDA
        GPUs that support it and float32 otherwise. The heads and the decoding
        always run in float32.

    Returns
    -------
    values, sigmas : `~numpy.ndarray`
        Shape ``(n, n_properties, ny, nx)``, float32.
    """
    import torch

    check_batch_size(batch_size)
    dtype = resolve_precision(precision, device)
    n, _, ny, nx = x.shape
    n_props = len(network.property_names)
    values = np.empty((n, n_props, ny, nx), dtype=np.float32)
    sigmas = np.empty_like(values)
    step = tile_size - 2 * TILE_MARGIN
    with torch.inference_mode():
        for y0 in _tile_starts(ny, tile_size, step):
            for x0 in _tile_starts(nx, tile_size, step):
                y1, x1 = min(y0 + tile_size, ny), min(x0 + tile_size, nx)
                batch = batch_size
                if batch == "auto":
                    batch = auto_batch_size(network, (y1 - y0, x1 - x0), device)
                for i0 in range(0, n, batch):
                    i1 = min(i0 + batch, n)
                    tile = np.ascontiguousarray(x[i0:i1, :, y0:y1, x0:x1])
                    tile = torch.from_numpy(tile).to(
                        device, memory_format=torch.channels_last
                    )
                    with torch.autocast(
                        device.type, dtype=dtype, enabled=dtype != torch.float32
                    ):
                        value, sigma = network.predict(tile)
                    # Keep the tile's inner part; image edges are kept in full.
                    ky0 = 0 if y0 == 0 else TILE_MARGIN
                    kx0 = 0 if x0 == 0 else TILE_MARGIN
                    ky1 = y1 - y0 if y1 == ny else y1 - y0 - TILE_MARGIN
                    kx1 = x1 - x0 if x1 == nx else x1 - x0 - TILE_MARGIN
                    region = (
                        slice(i0, i1),
                        slice(None),
                        slice(y0 + ky0, y0 + ky1),
                        slice(x0 + kx0, x0 + kx1),
                    )
                    values[region] = value[..., ky0:ky1, kx0:kx1].cpu().numpy()
                    sigmas[region] = sigma[..., ky0:ky1, kx0:kx1].cpu().numpy()
    return values, sigmas


def check_batch_size(batch_size):
    valid_int = isinstance(batch_size, Integral) and not isinstance(batch_size, bool)
    if batch_size != "auto" and not (valid_int and batch_size >= 1):
        msg = f"batch_size must be a positive integer or 'auto', not {batch_size!r}"
        raise ValueError(msg)
