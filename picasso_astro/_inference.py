"""How to run the network fast: batch size from free memory, precision per device."""

__all__ = ["AUTO_BATCH_LIMIT", "auto_batch_size", "free_memory", "resolve_precision"]

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
    try:
        import psutil
    except ImportError:
        pass
    else:
        return psutil.virtual_memory().available
    try:
        with open("/proc/meminfo") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


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
