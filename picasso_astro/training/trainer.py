"""Train a `~picasso_astro.model.PicassoUNet` on a dataset of galaxies.

Plain PyTorch: AdamW with linear warm-up and cosine decay, the
quantized-regression loss of `~picasso_astro.training._loss`, augmentation by
flips, 90-degree rotations and re-drawn noise, bf16 autocast on CUDA, several
GPUs through ``torchrun`` and `~torch.nn.parallel.DistributedDataParallel`.

Any map-style dataset whose items are dicts of arrays (see
`~picasso_astro.training._data.normalize_item`) and that has a
``property_names`` attribute trains the same way: mocks or real IFU maps.

A run directory holds::

    checkpoint.safetensors  model, optimizer and RNG tensors (no pickle)
    checkpoint.json         everything else: configs, step, optimizer groups
    log.jsonl, log.csv      one record per epoch
    split.json              training and validation indices
    model/                  the final model in the Hub layout
"""

import copy
import csv
import json
import math
import os
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import numpy as np
import torch

from .._inference import resolve_device
from .._options import LEGACY_PREPARATION
from ..config import ModelConfig
from ..exceptions import PicassoInputError
from ..hub import PicassoModel
from ._checkpoint import (
    CHECKPOINT_FORMAT_VERSION,
    CHECKPOINT_STATE,
    load_checkpoint,
    model_from_checkpoint,
    save_checkpoint,
    unflatten_optimizer,
)
from ._data import TrainingPairs, dataset_property_names, split_indices
from ._loss import quantized_regression_loss
from .evaluate import calibrate_uncertainty
from .export import write_model

__all__ = [
    "CHECKPOINT_FORMAT_VERSION",
    "FREEZABLE",
    "FitResult",
    "TrainConfig",
    "fit",
    "learning_rate",
    "load_checkpoint",
    "model_from_checkpoint",
    "resolve_device",
    "save_checkpoint",
]


@dataclass
class TrainConfig:
    """The training recipe.

    Parameters
    ----------
    epochs : int
        Passes over the training galaxies.
    batch_size : int
        Galaxies per optimizer step and process.
    lr : float
        Peak learning rate of AdamW.
    weight_decay : float
        AdamW decoupled weight decay.
    warmup_fraction : float
        Fraction of all steps with a linear warm-up from 0.
    min_lr_fraction : float
        The cosine decays to ``lr * min_lr_fraction``.
    grad_clip : float
        Clip the gradient norm to this (0: no clipping).
    sky_weight : float
        Total loss weight of sky pixels relative to galaxy pixels.
    residual_weight, value_weight : float
        Weights of the residual and dex-value terms of the loss.
    augment : bool
        Random flips, 90-degree rotations and noise re-draws.
    extra_noise : float
        Added-noise augmentation for data without noise-free images (see
        `~picasso_astro.training._data.TrainingPairs`).
    brightness : float
        Brightness augmentation: each galaxy's flux (and its surface-density
        truth) scaled by ``10**d`` with ``d`` uniform in ``[-brightness,
        brightness]`` dex (0: off).
    balance : float
        Exponent of the rarity weighting of each image's valid pixels (0: off;
        see `~picasso_astro.training._loss.pixel_weights`).
    crop : int
        Train on random ``crop`` x ``crop`` crops of each image (0: whole
        images). A local network learns from crops as much per pixel at a
        fraction of the cost of a step, and sees galaxies off-centre and cut
        by the edge, as it will in cutouts of other sizes. Validation uses
        whole images.
    context : int
        Frame pixels around a cutout that the model is to see at prediction
        (recorded in its configuration, the default of ``predict``'s
        ``preprocessing={"context": ...}`` for frames; 0: the cutout alone).
        For a model trained with ``crop`` on mocks larger than the crop, which
        has learnt windows at varied offsets.
    val_fraction : float
        Galaxies held out for validation (and evaluation).
    seed : int
        Seed of the initial weights, split, sampler and augmentation.
    num_workers : int
        DataLoader worker processes.
    freeze : tuple of str
        Parts of the network whose weights stay as they are (`FREEZABLE`):
        ``"encoder"``, ``"decoder"`` (with its upsampling layers) or
        ``"heads"``; for fine-tuning a trained model on a little data, e.g.
        real galaxies with IFU maps. Normalisation statistics are still
        re-measured on the new data.
    """

    epochs: int = 13
    batch_size: int = 16
    lr: float = 3e-4
    weight_decay: float = 1e-4
    warmup_fraction: float = 0.05
    min_lr_fraction: float = 0.01
    grad_clip: float = 1.0
    sky_weight: float = 0.1
    residual_weight: float = 1.0
    value_weight: float = 1.0
    augment: bool = True
    extra_noise: float = 0.3
    brightness: float = 0.3
    balance: float = 0.5
    crop: int = 0
    context: int = 0
    val_fraction: float = 0.1
    seed: int = 0
    num_workers: int = 0
    freeze: tuple = ()
    extra: dict = field(default_factory=dict)

    def __post_init__(self):
        if self.epochs < 1 or self.batch_size < 1:
            msg = "epochs and batch_size must be at least 1"
            raise PicassoInputError(msg)
        if self.lr <= 0:
            msg = f"lr must be positive, not {self.lr}"
            raise PicassoInputError(msg)
        self.freeze = tuple(self.freeze)
        unknown = [part for part in self.freeze if part not in FREEZABLE]
        if unknown:
            msg = (
                f"cannot freeze {', '.join(unknown)}; the parts of the network "
                f"are {', '.join(FREEZABLE)}"
            )
            raise PicassoInputError(msg)
        if self.crop < 0:
            msg = f"crop must be 0 (whole images) or a size in pixels, not {self.crop}"
            raise PicassoInputError(msg)
        if self.context < 0:
            msg = f"context must be 0 or a number of pixels, not {self.context}"
            raise PicassoInputError(msg)

    def to_dict(self):
        """Return a JSON-ready dictionary."""
        return asdict(self)

    @classmethod
    def from_dict(cls, values):
        """Build from `to_dict` output, ignoring unknown keys.

        Recipes recorded before an option existed had it off.
        """
        names = {f.name for f in fields(cls)}
        values = {**_OPTIONS_ADDED_LATER, **values}
        return cls(**{k: v for k, v in values.items() if k in names})


_OPTIONS_ADDED_LATER = {
    "brightness": 0.0,
    "balance": 0.0,
    "crop": 0,
    "context": 0,
    "freeze": (),
}

#: Parts of a `~picasso_astro.model.PicassoUNet` that ``freeze`` can hold fixed,
#: and the modules they are made of.
FREEZABLE = {
    "encoder": ("encoder",),
    "decoder": ("upsample", "decoder"),
    "heads": ("heads",),
}


def _freeze(network, parts):
    """Stop the gradients of the modules of ``parts`` (`FREEZABLE`)."""
    modules = {name for part in parts for name in FREEZABLE[part]}
    for name, param in network.named_parameters():
        if name.split(".", 1)[0] in modules:
            param.requires_grad_(False)


def _start_from(initial_model, model_config):
    """Load the model to fine-tune and the configuration the new one keeps."""
    from ..hub import load_model

    initial_model = load_model(initial_model)
    config = copy.deepcopy(initial_model.config)
    if model_config is not None:
        config.name, config.revision = model_config.name, model_config.revision
    for spec in config.properties.values():
        spec.pop("sigma_scale", None)  # refitted at the end of the run
    config.provenance = {
        "initial_model": {
            "name": initial_model.name,
            "revision": initial_model.revision,
            "source": initial_model.source,
        }
    }
    return initial_model, config


@dataclass
class FitResult:
    """What `fit` returns.

    Attributes
    ----------
    model : `~picasso_astro.hub.PicassoModel`
        The trained network (on the CPU, evaluation mode) and its configuration.
    history : list of dict
        One record per epoch trained in this call, as in ``log.jsonl``.
    out_dir : `~pathlib.Path`
        The run directory.
    """

    model: PicassoModel
    history: list
    out_dir: Path


def _epochs_within(time_limit, first_epoch_seconds, start_epoch, end_epoch, device):
    """Return the epoch a run can end at within ``time_limit`` seconds of this call.

    Judged from the call's first epoch; never before the end of that epoch.
    Under several processes (``device`` given) the first process decides.
    """
    fit = start_epoch + max(1, int(time_limit // max(first_epoch_seconds, 1e-9)))
    if device is not None:
        import torch.distributed as dist

        decided = torch.tensor([fit], device=device)
        dist.broadcast(decided, 0)
        fit = int(decided)
    return min(end_epoch, fit)


def learning_rate(step, *, total_steps, lr, warmup_fraction, min_lr_fraction):
    """Learning rate at optimizer step ``step`` (0-based): warm-up, then cosine."""
    warmup = max(round(warmup_fraction * total_steps), 0)
    if warmup and step < warmup:
        return lr * (step + 1) / warmup
    span = max(total_steps - warmup, 1)
    progress = min(max(step - warmup, 0) / span, 1.0)
    floor = lr * min_lr_fraction
    return floor + (lr - floor) * 0.5 * (1 + math.cos(math.pi * progress))


# ------------------------------------------------------------------- training


def dataset_preparation(dataset):
    """Return how a dataset's images were prepared (its manifest's record).

    Datasets written before the record existed (and datasets of other
    kinds without one) hold images stacked as they came.
    """
    recorded = (getattr(dataset, "attrs", None) or {}).get("preprocessing")
    if isinstance(recorded, str):
        recorded = json.loads(recorded)
    return LEGACY_PREPARATION.replace(recorded or {})


#: Galaxies read to measure a dataset's input range.
INPUT_RANGE_SAMPLE = 1000


def input_range(dataset, *, sample=INPUT_RANGE_SAMPLE, percentile=98.0):
    """Return the r-band brightness that few of a dataset's galaxies exceed.

    The ``percentile`` of the brightest r-band pixel in the central 4 x 4
    pixels of up to ``sample`` galaxies (evenly spread over the dataset): the
    model records it, and predictions flag brighter pixels ``OUT_OF_RANGE``.

    Returns
    -------
    input_range : dict
        ``{"r_max_nmgy": ..., "note": ...}``; empty for an empty dataset.
    """
    n = len(dataset)
    if n == 0:
        return {}
    indices = np.unique(np.linspace(0, n - 1, min(sample, n)).astype(int))
    peaks = []
    for index in indices:
        images = np.asarray(dataset[int(index)]["images"])
        ny, nx = images.shape[-2:]
        centre = images[2, ny // 2 - 2 : ny // 2 + 2, nx // 2 - 2 : nx // 2 + 2]
        peaks.append(float(np.nanmax(centre)))
    value = float(np.percentile(peaks, percentile))
    note = (
        f"{percentile:g}th percentile of the central r-band peak per pixel of "
        f"{len(peaks)} training galaxies"
    )
    return {"r_max_nmgy": round(value, 3), "note": note}


def _distributed_setup(device):
    """Join torch.distributed when run by torchrun (WORLD_SIZE > 1) or already in it.

    Returns ``(rank, world_size, device, distributed)``.
    """
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        if device.type == "cuda":
            device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        return dist.get_rank(), dist.get_world_size(), device, True
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return 0, 1, device, False
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if device.type == "cuda":
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return rank, world, device, True


def _write_logs(out_dir, record):
    with open(out_dir / "log.jsonl", "a") as handle:
        handle.write(json.dumps(record) + "\n")
    csv_path = out_dir / "log.csv"
    flat = {k: v for k, v in record.items() if not isinstance(v, dict)}
    for group in ("train_by_property", "val_by_property"):
        for name, value in record.get(group, {}).items():
            flat[f"{group.split('_')[0]}_{name}"] = value
    new = not csv_path.exists()
    with open(csv_path, "a", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(flat))
        if new:
            writer.writeheader()
        writer.writerow(flat)


def _truncate_logs(out_dir, epochs_done):
    """Drop log records of epochs after the checkpoint (an interrupted run)."""
    path = out_dir / "log.jsonl"
    if not path.exists():
        return
    records = [json.loads(line) for line in path.read_text().splitlines() if line]
    keep = [r for r in records if r.get("epoch", 0) <= epochs_done]
    path.unlink()
    (out_dir / "log.csv").unlink(missing_ok=True)
    for record in keep:
        _write_logs(out_dir, record)


def _evaluate_loss(network, loader, edges, tcfg, device, amp):
    network.eval()
    total, weight, per = 0.0, 0, {}
    with torch.no_grad():
        for batch in loader:
            x = batch["x"].to(device, memory_format=torch.channels_last)
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
                outputs = network(x)
            loss, by_property = quantized_regression_loss(
                outputs,
                batch["truth"].to(device),
                batch["weight"].to(device),
                edges,
                residual_weight=tcfg.residual_weight,
                value_weight=tcfg.value_weight,
            )
            n = x.shape[0]
            total += float(loss) * n
            weight += n
            for name, value in by_property.items():
                per[name] = per.get(name, 0.0) + float(value) * n
    network.train()
    if not weight:
        return None, {}
    return total / weight, {k: v / weight for k, v in per.items()}


#: Batches of training galaxies over which normalisation statistics are
#: re-measured after each epoch.
NORM_CALIBRATION_BATCHES = 50


def recalibrate_norm(network, loader, device, *, max_batches=NORM_CALIBRATION_BATCHES):
    """Re-measure the BatchNorm statistics of ``network`` with its final weights.

    The running averages kept during training mix statistics of earlier
    weights; the network is evaluated with these frozen statistics, so they
    are measured again, as plain averages over up to ``max_batches`` batches.
    Networks without BatchNorm are left as they are.
    """
    norms = [m for m in network.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    if not norms:
        return
    momenta = [m.momentum for m in norms]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None
    was_training = network.training
    network.train()
    with torch.no_grad():
        for number, batch in enumerate(loader):
            if number >= max_batches:
                break
            network(batch["x"].to(device, memory_format=torch.channels_last))
    for m, momentum in zip(norms, momenta, strict=True):
        m.momentum = momentum
    network.train(was_training)


def _image_sizes(dataset):
    """Each galaxy's image side for datasets of several sizes, else None."""
    if not hasattr(dataset, "image_sizes"):
        return None
    sizes = np.asarray(dataset.image_sizes())
    return sizes if np.unique(sizes).size > 1 else None


def _check_crop_fits(sizes, crop):
    """Refuse to train on images of several sizes unless crops make them one."""
    if sizes is None or 0 < crop <= sizes.min():
        return
    msg = (
        f"the datasets hold images of {', '.join(map(str, np.unique(sizes)))} "
        f"pixels; train on crops no larger than the smallest: --crop "
        f"{int(sizes.min())} or less"
    )
    raise PicassoInputError(msg)


def _batches_by_size(sizes, batch_size):
    """Return batches of positions whose images share a size (validation)."""
    batches = []
    for side in np.unique(sizes):
        positions = np.flatnonzero(sizes == side).tolist()
        batches += [
            positions[i : i + batch_size] for i in range(0, len(positions), batch_size)
        ]
    return batches


def _data_record(dataset):
    """Where the data came from, for split.json: a directory, a list, or None."""
    directories = getattr(dataset, "directories", None)
    if directories is not None:
        return [str(Path(d).resolve()) if d else None for d in directories]
    directory = getattr(dataset, "directory", None)
    return str(Path(directory).resolve()) if directory else None


def fit(
    dataset,
    out_dir,
    *,
    train_config=None,
    model_config=None,
    device="auto",
    resume=False,
    stop_after=None,
    time_limit=None,
    progress=True,
    data_description="",
    initial_model=None,
):
    """Train a model and write checkpoints, logs and the final model.

    Parameters
    ----------
    dataset : `torch.utils.data.Dataset`
        Map-style, items as accepted by
        `~picasso_astro.training._data.normalize_item`, with a
        ``property_names`` attribute. A fraction ``val_fraction`` of it is held
        out (indices in ``split.json``).
    out_dir : str or `~pathlib.Path`
        The run directory.
    train_config : `TrainConfig`, optional
        The recipe; ignored on resume (the checkpoint's is used, except
        ``epochs`` when given).
    model_config : `~picasso_astro.config.ModelConfig`, optional
        Architecture and properties; by default every property of the dataset
        with the default architecture. Ignored on resume.
    device : str
        ``"auto"`` (CUDA if available), ``"cpu"``, ``"cuda"`` or ``"cuda:N"``.
        Under ``torchrun`` with ``WORLD_SIZE > 1`` each process uses its
        ``LOCAL_RANK`` GPU and DistributedDataParallel.
    resume : bool
        Continue from the checkpoint in ``out_dir``, exactly where it stopped.
    stop_after : int, optional
        Stop after this many epochs in this call (for time-limited jobs);
        resume later to finish.
    time_limit : float, optional
        Seconds this call may spend training. After its first epoch the run is
        re-planned to the epochs that fit, and its learning-rate schedule with
        it, so that it still ends decayed (for machines lent for a fixed time).
        Calibration and writing the final model come on top.
    progress : bool
        Show a progress bar.
    data_description : str
        Where the data came from, for the model's provenance.
    initial_model : str, `~pathlib.Path` or `~picasso_astro.hub.PicassoModel`, optional
        Start from this model's weights (anything
        `~picasso_astro.hub.load_model` accepts) instead of random ones: its
        architecture, properties and input scaling are kept, ``model_config``
        gives only the new name and revision. Ignored on resume.

    Returns
    -------
    result : `FitResult`
    """
    from tqdm.auto import tqdm

    out_dir = Path(out_dir)
    device = resolve_device(device)
    rank, world, device, distributed = _distributed_setup(device)
    amp = device.type == "cuda"
    names = dataset_property_names(dataset)
    sizes = _image_sizes(dataset)

    if resume:
        state, tensors = load_checkpoint(out_dir)
        epochs = train_config.epochs if train_config is not None else None
        train_config = TrainConfig.from_dict(state["train_config"])
        if epochs is not None:
            train_config.epochs = epochs
        model_config = ModelConfig.from_dict(state["model_config"], source=str(out_dir))
    else:
        if (out_dir / CHECKPOINT_STATE).exists():
            msg = (
                f"{out_dir} already holds a training run; pass resume=True "
                "(--resume) to continue it or choose another output directory"
            )
            raise PicassoInputError(msg)
        state, tensors = None, None
        train_config = train_config or TrainConfig()
        if initial_model is not None:
            initial_model, model_config = _start_from(initial_model, model_config)
        if model_config is None:
            from ..properties import PROPERTIES

            model_config = ModelConfig(
                properties={
                    n: {"bin_edges": list(PROPERTIES[n].bin_edges)} for n in names
                }
            )
        if model_config.cutout.get("kind", "fixed") == "fixed":
            # Predictions cut galaxies out at the size the model was trained on
            # (the smallest, for datasets of several sizes).
            ny, nx = np.shape(dataset[0]["images"])[-2:]
            side = int(max(ny, nx)) if sizes is None else int(sizes.min())
            model_config.cutout = {"kind": "fixed", "size": side}
        # ... and prepare them as its training images were.
        model_config.preprocessing = dataset_preparation(dataset).replace(
            {"context": train_config.context}
        )
        model_config.input_range = input_range(dataset)
    tcfg = train_config
    property_names = model_config.property_names
    _check_crop_fits(sizes, tcfg.crop)

    torch.manual_seed(tcfg.seed)
    # Channels-last runs the convolutions several times faster on CPU (oneDNN)
    # and uses the tensor cores' layout on CUDA.
    network = model_config.build_network()
    if state is None and initial_model is not None:
        network.load_state_dict(initial_model.network.state_dict())
    network = network.to(device, memory_format=torch.channels_last)
    train_idx, val_idx = split_indices(
        len(dataset), val_fraction=tcfg.val_fraction, seed=tcfg.seed
    )
    if not train_idx:
        msg = "the dataset has no galaxies left for training; add more galaxies"
        raise PicassoInputError(msg)
    common = {
        "softening": model_config.softening,
        "multiple": network.multiple,
        "seed": tcfg.seed,
        "sky_weight": tcfg.sky_weight,
        "balance": tcfg.balance,
        "bin_edges": {n: s["bin_edges"] for n, s in model_config.properties.items()},
    }
    train_pairs = TrainingPairs(
        dataset,
        property_names,
        indices=train_idx,
        augment=tcfg.augment,
        extra_noise=tcfg.extra_noise,
        brightness=tcfg.brightness,
        crop=tcfg.crop,
        **common,
    )
    sampler = torch.utils.data.DistributedSampler(
        train_pairs, num_replicas=world, rank=rank, shuffle=True, seed=tcfg.seed
    )
    loader_options = {
        "batch_size": tcfg.batch_size,
        "num_workers": tcfg.num_workers,
        "pin_memory": device.type == "cuda",
    }
    val_loader = None
    if val_idx and rank == 0:
        val_pairs = TrainingPairs(
            dataset, property_names, indices=val_idx, augment=False, **common
        )
        if sizes is None:
            val_loader = torch.utils.data.DataLoader(val_pairs, **loader_options)
        else:
            options = dict(loader_options)
            batches = _batches_by_size(sizes[val_idx], options.pop("batch_size"))
            val_loader = torch.utils.data.DataLoader(
                val_pairs, batch_sampler=batches, **options
            )

    _freeze(network, tcfg.freeze)
    decay, no_decay = [], []
    for name, param in network.named_parameters():
        if not param.requires_grad:
            continue
        (no_decay if param.ndim <= 1 or name.endswith(".bias") else decay).append(param)
    optimizer = torch.optim.AdamW(
        [
            {"params": decay, "weight_decay": tcfg.weight_decay},
            {"params": no_decay, "weight_decay": 0.0},
        ],
        lr=tcfg.lr,
    )
    start_epoch, global_step = 0, 0
    if state is not None:
        network.load_state_dict(
            {
                k[len("model.") :]: v
                for k, v in tensors.items()
                if k.startswith("model.")
            }
        )
        optimizer.load_state_dict(
            unflatten_optimizer(state["optimizer"], tensors, device)
        )
        start_epoch, global_step = state["epoch"], state["global_step"]
        torch.set_rng_state(tensors["rng.torch"])
        if device.type == "cuda" and "rng.cuda.0" in tensors:
            n_cuda = torch.cuda.device_count()
            torch.cuda.set_rng_state_all(
                [tensors[f"rng.cuda.{i}"] for i in range(n_cuda)]
            )
        if rank == 0:
            _truncate_logs(out_dir, start_epoch)
    model = network
    if distributed:
        model = torch.nn.parallel.DistributedDataParallel(
            network, device_ids=[device.index] if device.type == "cuda" else None
        )
    edges = {n: network.heads[n].bin_edges for n in property_names}
    steps_per_epoch = math.ceil(len(sampler) / tcfg.batch_size)
    total_steps = steps_per_epoch * tcfg.epochs
    schedule = {
        "total_steps": total_steps,
        "lr": tcfg.lr,
        "warmup_fraction": tcfg.warmup_fraction,
        "min_lr_fraction": tcfg.min_lr_fraction,
    }
    if rank == 0:
        out_dir.mkdir(parents=True, exist_ok=True)
        split = {"train": train_idx, "val": val_idx, "seed": tcfg.seed}
        split["val_fraction"] = tcfg.val_fraction
        split["data"] = _data_record(dataset)
        (out_dir / "split.json").write_text(json.dumps(split) + "\n")

    history = []
    end_epoch = tcfg.epochs
    if stop_after is not None:
        end_epoch = min(end_epoch, start_epoch + int(stop_after))
    model.train()
    call_started = time.perf_counter()
    for epoch in range(start_epoch, end_epoch):
        if epoch >= end_epoch:
            break
        started = time.perf_counter()
        sampler.set_epoch(epoch)
        train_pairs.set_epoch(epoch)
        loader = torch.utils.data.DataLoader(
            train_pairs, sampler=sampler, **loader_options
        )
        running, count, per = 0.0, 0, {}
        bar = tqdm(
            loader,
            desc=f"epoch {epoch + 1}/{tcfg.epochs}",
            disable=not progress or rank != 0,
            leave=False,
        )
        for batch in bar:
            lr = learning_rate(global_step, **schedule)
            for group in optimizer.param_groups:
                group["lr"] = lr
            x = batch["x"].to(
                device, non_blocking=True, memory_format=torch.channels_last
            )
            truth = batch["truth"].to(device, non_blocking=True)
            weight = batch["weight"].to(device, non_blocking=True)
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
                outputs = model(x)
            loss, by_property = quantized_regression_loss(
                outputs,
                truth,
                weight,
                edges,
                residual_weight=tcfg.residual_weight,
                value_weight=tcfg.value_weight,
            )
            if not torch.isfinite(loss):
                msg = (
                    f"the loss became {float(loss)} at step {global_step}; lower "
                    "the learning rate or check the data for NaNs"
                )
                raise FloatingPointError(msg)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if tcfg.grad_clip:
                torch.nn.utils.clip_grad_norm_(network.parameters(), tcfg.grad_clip)
            optimizer.step()
            global_step += 1
            n = x.shape[0]
            running += float(loss.detach()) * n
            count += n
            for name, value in by_property.items():
                per[name] = per.get(name, 0.0) + float(value) * n
            bar.set_postfix(loss=f"{running / count:.4f}", lr=f"{lr:.2e}")
        bar.close()
        if distributed:
            import torch.distributed as dist

            sums = torch.tensor([running, count, *per.values()], device=device)
            dist.all_reduce(sums)
            running, count = float(sums[0]), float(sums[1])
            per = dict(zip(per, (float(v) for v in sums[2:]), strict=True))
        recalibrate_norm(
            network,
            torch.utils.data.DataLoader(train_pairs, shuffle=False, **loader_options),
            device,
        )
        if time_limit and epoch == start_epoch:
            within = _epochs_within(
                time_limit,
                time.perf_counter() - call_started,
                start_epoch,
                end_epoch,
                device if distributed else None,
            )
            if within < end_epoch:  # the run ends sooner: so does its schedule
                end_epoch = tcfg.epochs = within
                schedule["total_steps"] = steps_per_epoch * within
        if rank != 0:
            continue
        record = {
            "epoch": epoch + 1,
            "step": global_step,
            "lr": learning_rate(max(global_step - 1, 0), **schedule),
            "train_loss": running / max(count, 1),
            "seconds": round(time.perf_counter() - started, 3),
            "train_by_property": {k: v / max(count, 1) for k, v in per.items()},
        }
        if val_loader is not None:
            val, val_per = _evaluate_loss(network, val_loader, edges, tcfg, device, amp)
            record["val_loss"] = val
            record["val_by_property"] = val_per
        save_checkpoint(
            out_dir,
            network=network,
            optimizer=optimizer,
            state={
                "epoch": epoch + 1,
                "global_step": global_step,
                "train_config": tcfg.to_dict(),
                "model_config": model_config.to_dict(),
                "schedule": schedule,
                "property_names": list(property_names),
                "data": data_description,
                "world_size": world,
            },
        )
        _write_logs(out_dir, record)
        history.append(record)
        if progress:
            val_text = f", val {record['val_loss']:.4f}" if "val_loss" in record else ""
            tqdm.write(
                f"epoch {epoch + 1}/{tcfg.epochs}: train {record['train_loss']:.4f}"
                f"{val_text} ({record['seconds']:.1f} s)"
            )

    network.eval()
    result_config = copy.deepcopy(model_config)
    result_config.provenance = {
        **result_config.provenance,
        "training": {
            "data": data_description,
            "recipe": tcfg.to_dict(),
            "epochs_done": max(end_epoch, start_epoch),
            "global_step": global_step,
            "n_train": len(train_idx),
            "n_val": len(val_idx),
        },
    }
    model_out = PicassoModel(network.cpu(), result_config, source=str(out_dir))
    if rank == 0 and end_epoch >= tcfg.epochs:
        if val_idx:
            scales = calibrate_uncertainty(
                model_out, dataset, indices=val_idx, device=device
            )
            model_out.network.cpu()
            result_config.provenance["training"]["sigma_scale"] = scales
        write_model(model_out, out_dir / "model", overwrite=True)
    if distributed:
        import torch.distributed as dist

        dist.barrier()
    return FitResult(model_out, history, out_dir)
