"""The ``fit``, ``evaluate``, ``calibrate``, ``export`` and ``push`` commands.

Plain click commands, attached to the ``picasso-train`` group in
`picasso_astro.training.cli`.
"""

import json
from pathlib import Path

import click

from ..exceptions import PicassoInputError, PicassoModelError

__all__ = [
    "calibrate_command",
    "evaluate_command",
    "export_command",
    "fit_command",
    "push_command",
]

_USER_ERRORS = (PicassoInputError, PicassoModelError, FileExistsError)


def _open_dataset(path, *, in_memory=False):
    """Open a training dataset: sharded HDF5 (mocks), or npz for small jobs."""
    path = Path(path)
    if (path / "properties.json").is_file():
        from ._npz_dataset import open_dataset

        return open_dataset(path)
    from .dataset import ShardedDataset

    return ShardedDataset(path, in_memory=in_memory)


def _open_datasets(paths, *, in_memory=False):
    """Open one training dataset, or several as one (`CombinedDataset`)."""
    datasets = [_open_dataset(path, in_memory=in_memory) for path in paths]
    if len(datasets) == 1:
        return datasets[0]
    from .dataset import CombinedDataset

    return CombinedDataset(datasets)


def _data_description(paths, dataset):
    names = " + ".join(Path(path).resolve().name for path in paths)
    return f"{names} ({len(dataset)} galaxies)"


def _fail(error):
    raise click.ClickException(str(error)) from None


_model_option = click.option(
    "--model",
    required=True,
    type=click.Path(exists=True, file_okay=False),
    help="A model directory, or a run directory of fit (its model/ is used).",
)


def _model_directory(path):
    """Return the model directory of ``--model``: itself, or a run's model/."""
    path = Path(path)
    return path / "model" if (path / "model" / "config.json").is_file() else path


@click.command("fit")
@click.option(
    "--data",
    required=True,
    multiple=True,
    type=click.Path(exists=True, file_okay=False),
    help="Training dataset directory (picasso-train mocks writes one); "
    "repeat it to train on several made alike, e.g. at two sizes (with --crop).",
)
@click.option(
    "--out",
    required=True,
    type=click.Path(file_okay=False),
    help="Run directory: checkpoints, logs, split and the final model/.",
)
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda.")
@click.option(
    "--epochs",
    default=None,
    type=click.IntRange(min=1),
    help="Epochs in all [default: 13; on --resume, the run's].",
)
@click.option("--resume", is_flag=True, help="Continue the run in --out.")
@click.option("--batch-size", default=16, show_default=True, type=click.IntRange(1))
@click.option("--lr", default=3e-4, show_default=True, type=float, help="Peak LR.")
@click.option("--weight-decay", default=1e-4, show_default=True, type=float)
@click.option("--width", default=32, show_default=True, type=click.IntRange(1))
@click.option("--depth", default=4, show_default=True, type=click.IntRange(1))
@click.option(
    "--properties",
    default=None,
    help="Comma-separated properties to train (default: all in the dataset).",
)
@click.option("--val-fraction", default=0.1, show_default=True, type=float)
@click.option("--seed", default=0, show_default=True, type=int)
@click.option("--workers", default=0, show_default=True, type=click.IntRange(0))
@click.option("--no-augment", is_flag=True, help="No flips, rotations or noise.")
@click.option(
    "--brightness",
    default=0.3,
    show_default=True,
    type=click.FloatRange(0),
    help="Brightness augmentation: flux and surface-density truth scaled by up "
    "to this many dex either way (0: off).",
)
@click.option(
    "--balance",
    default=0.5,
    show_default=True,
    type=click.FloatRange(0),
    help="Rarity weighting of the loss: pixels of rare values (bright centres) "
    "weigh more (0: off).",
)
@click.option(
    "--crop",
    default=0,
    show_default=True,
    type=click.IntRange(0),
    help="Train on random crops of this many pixels a side (0: whole images).",
)
@click.option(
    "--context",
    default=0,
    show_default=True,
    type=click.IntRange(0),
    help="Frame pixels around a cutout the model is to see at prediction "
    "(recorded; for models trained with --crop on larger mocks).",
)
@click.option(
    "--init-from",
    default=None,
    help="Start from this model's weights (a directory, 'default' or a Hub "
    "name) instead of random ones; keeps its architecture and properties.",
)
@click.option(
    "--freeze",
    multiple=True,
    type=click.Choice(["encoder", "decoder", "heads"]),
    help="Keep this part of the network fixed (repeatable); with --init-from, "
    "to fine-tune on a little data such as IFU maps.",
)
@click.option(
    "--stop-after",
    default=None,
    type=click.IntRange(1),
    help="Stop after this many epochs in this call (resume later).",
)
@click.option(
    "--in-memory",
    is_flag=True,
    help="Read the whole dataset into memory first (about 0.6 MB a 128-px "
    "galaxy): faster loading, for GPUs.",
)
@click.option(
    "--time-limit",
    default=None,
    type=click.FloatRange(min=0, min_open=True),
    help="Seconds this call may train; the run is shortened after its first "
    "epoch to the epochs that fit, its schedule with it.",
)
@click.option("--name", default="picasso-mocks", show_default=True)
@click.option("--revision", default="local", show_default=True)
@click.option("--quiet", is_flag=True, help="No progress bar.")
def fit_command(
    data,
    out,
    device,
    epochs,
    resume,
    batch_size,
    lr,
    weight_decay,
    width,
    depth,
    properties,
    val_fraction,
    seed,
    workers,
    no_augment,
    brightness,
    balance,
    crop,
    context,
    init_from,
    freeze,
    stop_after,
    in_memory,
    time_limit,
    name,
    revision,
    quiet,
):
    """Train a model on a dataset; several GPUs with torchrun."""
    from ..config import ModelConfig
    from ..properties import PROPERTIES
    from ._data import dataset_property_names
    from .trainer import TrainConfig, fit

    try:
        dataset = _open_datasets(data, in_memory=in_memory)
        names = dataset_property_names(dataset)
        if properties and init_from:
            msg = (
                "--properties chooses what a new model predicts; a model started "
                "with --init-from keeps the properties of the model it starts from"
            )
            raise PicassoInputError(msg)
        if properties:
            names = tuple(p.strip() for p in properties.split(",") if p.strip())
            unknown = [p for p in names if p not in PROPERTIES]
            if unknown:
                msg = f"unknown properties {unknown}; known: {', '.join(PROPERTIES)}"
                raise PicassoInputError(msg)
        model_config = ModelConfig(
            properties={n: {"bin_edges": list(PROPERTIES[n].bin_edges)} for n in names},
            width=width,
            depth=depth,
            name=name,
            revision=revision,
        )
        train_config = TrainConfig(
            epochs=epochs or 13,
            batch_size=batch_size,
            lr=lr,
            weight_decay=weight_decay,
            val_fraction=val_fraction,
            seed=seed,
            num_workers=workers,
            augment=not no_augment,
            brightness=brightness,
            balance=balance,
            crop=crop,
            context=context,
            freeze=tuple(freeze),
        )
        if resume and epochs is None:
            train_config = None  # the run's own recipe and length
        result = fit(
            dataset,
            out,
            train_config=train_config,
            model_config=model_config,
            device=device,
            resume=resume,
            stop_after=stop_after,
            time_limit=time_limit,
            progress=not quiet,
            data_description=_data_description(data, dataset),
            initial_model=init_from,
        )
    except _USER_ERRORS as error:
        _fail(error)
    if result.history:
        last = result.history[-1]
        click.echo(
            f"{out}: epoch {last['epoch']}, train loss {last['train_loss']:.4f}"
            + (f", val loss {last['val_loss']:.4f}" if "val_loss" in last else "")
        )
    else:
        click.echo(f"{out}: nothing left to train")


@click.command("evaluate")
@_model_option
@click.option("--data", required=True, type=click.Path(exists=True, file_okay=False))
@click.option(
    "--out",
    required=True,
    type=click.Path(file_okay=False),
    help="Where evaluation.json and the plots go.",
)
@click.option(
    "--split",
    "split_file",
    default=None,
    type=click.Path(exists=True, dir_okay=False),
    help="split.json of the run: evaluate its validation galaxies, fit the "
    "baseline on its training galaxies (default: the run's, when --model is a "
    "run directory and --data is the data it was trained on).",
)
@click.option(
    "--baseline-data",
    default=None,
    type=click.Path(exists=True, file_okay=False),
    help="Fit the colour-M/L baseline on this dataset (e.g. the training set) "
    "instead of on --data.",
)
@click.option("--device", default="auto", show_default=True)
@click.option("--snr-min", default=3.0, show_default=True, type=float)
@click.option("--quiet", is_flag=True, help="No progress bar.")
def evaluate_command(
    model, data, out, split_file, baseline_data, device, snr_min, quiet
):
    """Per-pixel, integrated and calibration metrics, with a colour-M/L baseline.

    On a held-out dataset (one the model never saw), every galaxy is evaluated;
    on the run's own training data, only its validation galaxies.
    """
    from .evaluate import evaluate, format_table

    model = Path(model)
    run_split = model / "split.json"
    if split_file is None and run_split.is_file():
        trained_on = json.loads(run_split.read_text()).get("data")
        # A run on several datasets numbers its galaxies across them all.
        if isinstance(trained_on, str) and Path(trained_on) == Path(data).resolve():
            split_file = run_split
    model = _model_directory(model)
    try:
        dataset = _open_dataset(data)
        indices = train = None
        if split_file is not None:
            split = json.loads(Path(split_file).read_text())
            indices, train = split["val"], split["train"]
            if not indices:
                msg = f"{split_file} holds no validation galaxies; pass another split"
                raise PicassoInputError(msg)
        baseline = None
        if baseline_data is not None:
            baseline, train = _open_dataset(baseline_data), None
        metrics = evaluate(
            model,
            dataset,
            indices=indices,
            baseline_dataset=baseline,
            baseline_indices=train,
            device=device,
            snr_min=snr_min,
            out_dir=out,
            progress=not quiet,
        )
    except _USER_ERRORS as error:
        _fail(error)
    click.echo(format_table(metrics))
    click.echo(f"written to {out}/evaluation.json")


@click.command("calibrate")
@_model_option
@click.option(
    "--data",
    required=True,
    type=click.Path(exists=True, file_okay=False),
    help="Galaxies with truth the model never saw (not its test set).",
)
@click.option(
    "--out",
    required=True,
    type=click.Path(file_okay=False),
    help="Where the recalibrated model is written (a new directory).",
)
@click.option(
    "--n",
    "n_galaxies",
    default=None,
    type=click.IntRange(min=1),
    help="Use the first N galaxies (default: all).",
)
@click.option("--device", default="auto", show_default=True)
@click.option("--overwrite", is_flag=True, help="Replace a model already in --out.")
def calibrate_command(model, data, out, n_galaxies, device, overwrite):
    """Fit a model's uncertainty scales and 95 % intervals again on new galaxies.

    The weights are unchanged; config.json gets each property's sigma_scale
    (68 % of truths within 1 sigma) and interval_95 (95 % within that many
    sigmas) fitted on --data.
    """
    from ..hub import load_model
    from .evaluate import calibrate_uncertainty
    from .export import write_model

    model_dir = _model_directory(model)
    if Path(out).resolve() == model_dir.resolve():
        _fail(f"--out is the model's own directory {model_dir}; give a new one")
    if (Path(out) / "config.json").exists() and not overwrite:
        _fail(f"{out} already holds a model; pass --overwrite to replace it")
    try:
        loaded = load_model(model_dir)
        dataset = _open_dataset(data)
        n = len(dataset) if n_galaxies is None else min(n_galaxies, len(dataset))
        scales = calibrate_uncertainty(loaded, dataset, indices=range(n), device=device)
        if not scales:
            msg = (
                f"{data} has too few scored pixels with truth for the model's "
                "properties to fit their uncertainties; give more galaxies"
            )
            raise PicassoInputError(msg)
        loaded.network.cpu()
        widths = {name: loaded.config.intervals_95()[name] for name in scales}
        loaded.config.provenance.pop("metrics", None)  # measured before
        loaded.config.provenance["calibration"] = {
            "data": str(Path(data).resolve()),
            "n_galaxies": n,
            "sigma_scale": scales,
            "interval_95": widths,
        }
        directory = write_model(loaded, out, overwrite=overwrite)
    except _USER_ERRORS as error:
        _fail(error)
    for name, scale in scales.items():
        click.echo(
            f"{name:<20} sigma_scale {scale:7.4f}  interval_95 {widths[name]:6.3f}"
        )
    click.echo(f"model written to {directory}")


@click.command("export")
@click.option(
    "--run",
    required=True,
    type=click.Path(exists=True, file_okay=False),
    help="The run directory of fit.",
)
@click.option("--out", required=True, type=click.Path(file_okay=False))
@click.option(
    "--metrics",
    default=None,
    type=click.Path(exists=True, dir_okay=False),
    help="evaluation.json from picasso-train evaluate, for the model card.",
)
@click.option("--name", default=None, help="Model name (default: the run's).")
@click.option("--revision", default=None, help="Model revision.")
@click.option("--overwrite", is_flag=True)
def export_command(run, out, metrics, name, revision, overwrite):
    """Write config.json, model.safetensors and README.md (the Hub layout)."""
    from .export import export_run

    try:
        directory = export_run(
            run,
            out,
            metrics=metrics,
            name=name,
            revision=revision,
            overwrite=overwrite,
        )
    except _USER_ERRORS as error:
        _fail(error)
    click.echo(f"model written to {directory}")


@click.command("push")
@click.argument("directory", type=click.Path(exists=True, file_okay=False))
@click.option("--repo-id", required=True, help="owner/name on the Hugging Face Hub.")
@click.option("--revision", default=None, help="Branch (default: main).")
@click.option("--private", is_flag=True, help="Create the repository as private.")
def push_command(directory, repo_id, revision, private):
    """Upload a model directory to the Hub (token from HF_TOKEN)."""
    from .export import push_to_hub

    try:
        push_to_hub(directory, repo_id, revision=revision, private=private)
    except _USER_ERRORS as error:
        _fail(error)
    click.echo(f"uploaded {directory} to {repo_id}")
