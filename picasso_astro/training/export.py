"""Export a trained model in the Hub layout and upload it to the Hugging Face Hub.

The layout is that of `picasso_astro.hub`: ``config.json``,
``model.safetensors`` and a ``README.md`` model card.
"""

import json
import os
import shutil
import tempfile
from pathlib import Path

from ..exceptions import PicassoInputError
from ..hub import (
    CARD_NAME,
    CONFIG_NAME,
    WEIGHTS_NAME,
    load_model_directory,
    save_model,
)
from ._checkpoint import CHECKPOINT_STATE, model_from_checkpoint

__all__ = [
    "HUB_FILES",
    "export_run",
    "model_card",
    "push_to_hub",
    "write_model",
]

#: The files uploaded to the Hub, and only these.
HUB_FILES = (CONFIG_NAME, WEIGHTS_NAME, CARD_NAME)

CITATION = """@article{BuckWolf2021,
  author  = {Buck, Tobias and Wolf, Steffen},
  title   = {Predicting resolved galaxy properties from photometric images
             using convolutional neural networks},
  journal = {arXiv e-prints},
  year    = {2021},
  eprint  = {2111.01154},
  archivePrefix = {arXiv},
}"""


def _metrics_table(metrics):
    rows = []
    for name, entry in (metrics or {}).get("properties", {}).items():
        pixel = entry.get("pixel", {})
        integrated = entry.get("integrated", {})
        calibration = entry.get("calibration", {})

        def fmt(value, spec=".3f"):
            return "-" if value is None else format(value, spec)

        rows.append(
            f"| {name} | {fmt(pixel.get('rms'))} | {fmt(pixel.get('bias'))} | "
            f"{fmt(integrated.get('scatter'))} | {fmt(integrated.get('bias'))} | "
            f"{fmt(calibration.get('coverage_68'), '.2f')} | "
            f"{fmt(calibration.get('coverage_95'), '.2f')} |"
        )
    if not rows:
        return "No evaluation metrics were recorded for this model.\n"
    header = (
        "| property | pixel RMS (dex) | pixel bias (dex) | integrated scatter (dex) "
        "| integrated bias (dex) | in 68 % interval | in 95 % interval |\n"
        "|---|---|---|---|---|---|---|\n"
    )
    text = header + "\n".join(rows) + "\n"
    baseline = (metrics or {}).get("baseline")
    if baseline and baseline.get("rms") is not None:
        text += (
            f"\nColour-M/L baseline for stellar mass (log Sigma* = a + b (g - i) + "
            f"c mu_i, fitted on training pixels), on the same test pixels: RMS "
            f"{baseline['rms']:.3f} dex, bias {baseline['bias']:.3f} dex; the network "
            f"on those pixels: RMS {baseline['model_rms']:.3f} dex, bias "
            f"{baseline['model_bias']:.3f} dex.\n"
        )
    selection = (metrics or {}).get("selection")
    if selection:
        text += f"\nPixels: {selection}.\n"
    return text


def _norm_text(config):
    if config.norm == "batch":
        return (
            "BatchNorm with statistics frozen after training (local: a pixel's "
            f"map depends on its neighbourhood only), {config.upsample} up-sampling"
        )
    return f"GroupNorm groups {config.groups}, {config.upsample} up-sampling"


def _scale_text(config):
    scales = {
        name: spec["sigma_scale"]
        for name, spec in config.properties.items()
        if "sigma_scale" in spec
    }
    if not scales:
        return ""
    listed = ", ".join(f"{name} {scale:g}" for name, scale in scales.items())
    text = (
        ", scaled by factors fitted on the validation galaxies so that 68 % of "
        f"true values fall within 1 sigma there ({listed})"
    )
    fitted = {
        name: spec["interval_95"]
        for name, spec in config.properties.items()
        if "interval_95" in spec
    }
    if fitted:
        listed = ", ".join(f"{name} {k:g}" for name, k in fitted.items())
        text += (
            "; 95 % intervals span the number of those sigmas fitted there for "
            f"95 % ({listed})"
        )
    return text


def model_card(config, *, metrics=None, training_data=None, recipe=None):
    """Return the Markdown model card (``README.md``) of a model.

    Parameters
    ----------
    config : `~picasso_astro.config.ModelConfig`
        The model's configuration (its provenance supplies defaults).
    metrics : dict, optional
        As written by `picasso_astro.training.evaluate.evaluate` (JSON).
    training_data : str, optional
        What the model was trained on.
    recipe : dict, optional
        The training recipe (`~picasso_astro.training.trainer.TrainConfig`).

    Returns
    -------
    text : str
    """
    training = config.provenance.get("training", {})
    recipe = recipe if recipe is not None else training.get("recipe", {})
    training_data = training_data or training.get("data") or "not recorded"
    properties = ", ".join(f"`{name}`" for name in config.property_names)
    recipe_lines = "\n".join(f"- {key}: {value}" for key, value in recipe.items())
    counts = ""
    if "n_train" in training:
        counts = (
            f" {training['n_train']} galaxies for training, "
            f"{training.get('n_val', 0)} held out for validation and evaluation."
        )
    return f"""---
license: bsd-3-clause
library_name: picasso_astro
tags:
- astronomy
- galaxies
- sdss
- image-to-image
---

# {config.name} (revision {config.revision})

A [picasso_astro](https://github.com/picasso-astro/picasso_astro) model: a U-Net
with quantized-regression heads (the PICASSO method of Buck & Wolf 2021) that maps
SDSS u, g, r, i, z images of a galaxy to per-pixel maps of {properties}, each as a
log10 value with a per-pixel uncertainty.

```python
import picasso_astro
maps = picasso_astro.predict(["frame-u.fits", ...], model="path/or/hub/repo")
```

## Architecture and input

- U-Net, width {config.width}, depth {config.depth}, {_norm_text(config)};
  {config.in_channels} input channels (asinh-scaled fluxes in nanomaggies with
  softening {config.softening}, plus a validity channel).
- Pixel scale {config.pixel_scale} arcsec; cutout convention {config.cutout}.
- Bin edges per property: see `config.json`.

## Training data

{training_data}.{counts}

## Training recipe

Quantized-regression loss (bin cross-entropy plus residual regression, after
Güler et al. 2017, plus a pixel-weighted L2 on the decoded log10 value), masked
pixels excluded and sky pixels down-weighted; AdamW with linear warm-up and cosine
decay; flips, 90-degree rotations and noise augmentation.

{recipe_lines or "- not recorded"}

## Evaluation

Held-out galaxies. Pixel metrics use pixels with r-band S/N > 3; integrated
metrics compare sums (surface densities) or means (other properties) within two
half-mass radii; the last two columns are the fractions of true values inside the
predicted 68 % and 95 % intervals (value +- 1 sigma and value +- the model's
`interval_95` sigmas, 1.96 when not fitted).

{_metrics_table(metrics)}
## Limitations

- Trained on mock images: the gap between mocks and real SDSS galaxies (the
  simulated or modelled galaxy population, dust, the treatment of the sky,
  neighbours and artefacts) is not measured by the numbers above, which are on mocks
  of the same kind. Buck & Wolf (2021) warn that a network trained on one set of
  mocks may not transfer to real galaxies; check predictions against IFU maps
  (MaNGA, SAMI, CALIFA) before scientific use.
- Valid for galaxies like the training set (redshift range, masses, sizes, image
  scale and cutout convention); outside it, predictions are extrapolations.
- Per-pixel uncertainties come from the spread of the bin
  probabilities{_scale_text(config)}; see the coverage columns for how well
  they are calibrated.

## Citation

If you use this model, please cite Buck & Wolf (2021), arXiv:2111.01154:

```bibtex
{CITATION}
```
"""


def write_model(model, directory, *, metrics=None, overwrite=False):
    """Write a model in the Hub layout with its model card.

    Parameters
    ----------
    model : `~picasso_astro.hub.PicassoModel`
    directory : str or `~pathlib.Path`
    metrics : dict, optional
        Evaluation metrics for the card (and the config's provenance).
    overwrite : bool
        Replace existing model files.

    Returns
    -------
    directory : `~pathlib.Path`
    """
    if metrics is not None:
        model.config.provenance["metrics"] = _summary(metrics)
    card = model_card(model.config, metrics=metrics)
    return save_model(model, directory, model_card=card, overwrite=overwrite)


def _summary(metrics):
    keep = {}
    for name, entry in metrics.get("properties", {}).items():
        keep[name] = {
            group: {k: v for k, v in entry.get(group, {}).items() if k != "profile"}
            for group in ("pixel", "integrated", "calibration")
            if group in entry
        }
    return {"properties": keep, "baseline": metrics.get("baseline")}


def _finished_model(run_dir):
    """Return the model ``fit`` wrote at the end of the checkpointed run, if any.

    It carries what the checkpoint does not: the uncertainty scales fitted on
    the validation galaxies.
    """
    final = Path(run_dir) / "model"
    state_file = Path(run_dir) / CHECKPOINT_STATE
    if not (final / WEIGHTS_NAME).is_file() or not state_file.is_file():
        return None
    model = load_model_directory(final)
    training = model.config.provenance.get("training", {})
    step = json.loads(state_file.read_text()).get("global_step")
    if training.get("global_step") != step:
        return None  # written by an earlier end of the run
    return model


def export_run(
    run_dir, out_dir, *, metrics=None, name=None, revision=None, overwrite=False
):
    """Export the model of a training run directory to the Hub layout.

    Parameters
    ----------
    run_dir : str or `~pathlib.Path`
        A run directory of `~picasso_astro.training.trainer.fit`: the model
        it wrote at the end (with its fitted uncertainty scales), else the
        weights of its last checkpoint.
    out_dir : str or `~pathlib.Path`
        Where ``config.json``, ``model.safetensors`` and ``README.md`` go.
    metrics : dict or path-like, optional
        Evaluation metrics, or the path of the JSON file written by
        ``picasso-train evaluate``.
    name, revision : str, optional
        Override the model's name and revision.
    overwrite : bool
        Replace an existing export.

    Returns
    -------
    out_dir : `~pathlib.Path`
    """
    model = _finished_model(run_dir)
    if model is None:
        model, state = model_from_checkpoint(run_dir)
        model.config.provenance.setdefault(
            "training",
            {
                "data": state.get("data", ""),
                "recipe": state.get("train_config", {}),
                "epochs_done": state.get("epoch"),
                "global_step": state.get("global_step"),
            },
        )
    if isinstance(metrics, str | os.PathLike):
        try:
            metrics = json.loads(Path(metrics).read_text())
        except (OSError, json.JSONDecodeError) as exc:
            msg = f"cannot read metrics from {metrics} ({exc}); pass evaluate's JSON"
            raise PicassoInputError(msg) from None
    if name:
        model.config.name = name
    if revision:
        model.config.revision = revision
    return write_model(model, out_dir, metrics=metrics, overwrite=overwrite)


def push_to_hub(
    directory,
    repo_id,
    *,
    token=None,
    revision=None,
    private=False,
    commit_message="Upload picasso_astro model",
):
    """Upload a model directory to the Hugging Face Hub.

    Only ``config.json``, ``model.safetensors`` and ``README.md`` are uploaded
    (copied to a staging directory first, so that nothing else can slip in).

    Parameters
    ----------
    directory : str or `~pathlib.Path`
        A model directory in the Hub layout (see `write_model`).
    repo_id : str
        ``"owner/name"`` on the Hub; created if it does not exist.
    token : str, optional
        Access token; by default the environment variable ``HF_TOKEN``.
    revision : str, optional
        Branch to upload to (default: the main branch).
    private : bool
        Create the repository as private.
    commit_message : str

    Returns
    -------
    commit : object
        What `huggingface_hub.HfApi.upload_folder` returns.
    """
    from huggingface_hub import HfApi

    directory = Path(directory)
    missing = [name for name in HUB_FILES if not (directory / name).is_file()]
    if missing:
        msg = (
            f"{directory} lacks {', '.join(missing)}; export the model first "
            "(picasso-train export)"
        )
        raise PicassoInputError(msg)
    token = token or os.environ.get("HF_TOKEN")
    if not token:
        msg = "no Hugging Face token: set the environment variable HF_TOKEN"
        raise PicassoInputError(msg)
    api = HfApi(token=token)
    api.create_repo(repo_id, private=private, exist_ok=True, repo_type="model")
    with tempfile.TemporaryDirectory(prefix="picasso-push-") as staging:
        for name in HUB_FILES:
            shutil.copy2(directory / name, Path(staging) / name)
        return api.upload_folder(
            folder_path=staging,
            repo_id=repo_id,
            repo_type="model",
            revision=revision,
            commit_message=commit_message,
        )
