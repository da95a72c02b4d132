"""Model files: the Hub layout on disk, the bundled default, Hub downloads.

A model is a directory in the Hugging Face Hub layout::

    config.json         architecture, bands, scaling, properties, provenance
    model.safetensors   the weights (never pickle)
    README.md           the model card

Only ``config.json`` and ``.safetensors`` files are ever read. Models on the
Hugging Face Hub are known by name through a registry that pins, for each,
the repository, the commit and the sha256 of every file; a downloaded file is
checked against its pin before it is read, every time it is loaded.
"""

import hashlib
import json
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

from . import _download
from ._atomic import atomic_write_bytes
from ._download import CACHE_ENV, CARD_NAME, CONFIG_NAME, WEIGHTS_NAME
from ._registry import (
    _REGISTRY,
    _SAFE_FILE_RE,
    HubModel,
    ModelFile,
    download_model,
    hash_model_files,
    known_models,
    register_model,
    unregister_model,
)
from .config import ModelConfig
from .exceptions import PicassoInputError, PicassoModelError, PicassoWarning

__all__ = [
    "BUNDLED_MODEL_DIR",
    "CACHE_ENV",
    "HubModel",
    "ModelFile",
    "ModelListing",
    "PicassoModel",
    "download_model",
    "hash_model_files",
    "known_models",
    "list_models",
    "load_model",
    "load_model_directory",
    "read_config",
    "register_model",
    "save_model",
    "unregister_model",
]

#: Where the default model ships inside the package.
BUNDLED_MODEL_DIR = Path(__file__).parent / "data" / "default"


@dataclass
class PicassoModel:
    """A network with the configuration it was trained with.

    Parameters
    ----------
    network : `~picasso_astro.model.PicassoUNet`
        The torch module, in evaluation mode.
    config : `~picasso_astro.config.ModelConfig`
        How to feed it and what it predicts.
    source : str
        Where it was loaded from (a directory or a Hub repo id).
    """

    network: object
    config: ModelConfig
    source: str = ""

    @property
    def name(self):
        """str: the model's name."""
        return self.config.name

    @property
    def revision(self):
        """str: the model's revision."""
        return self.config.revision

    @property
    def property_names(self):
        """Tuple of str: predicted properties, in output order."""
        return self.config.property_names

    def to(self, device):
        """Move the network to ``device`` and return self."""
        self.network.to(device)
        return self


def save_model(model, directory, *, model_card=None, overwrite=False):
    """Write a model in the Hub layout.

    Parameters
    ----------
    model : `PicassoModel`
        The network and its configuration.
    directory : str or `~pathlib.Path`
        Created if needed.
    model_card : str, optional
        Markdown text for ``README.md``; a minimal card is written if omitted.
    overwrite : bool
        Replace existing model files.

    Returns
    -------
    directory : `~pathlib.Path`
    """
    from safetensors.torch import save

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    if not overwrite and (directory / WEIGHTS_NAME).exists():
        msg = f"{directory} already holds a model; pass overwrite=True to replace it"
        raise FileExistsError(msg)
    state = {
        k: v.detach().cpu().contiguous() for k, v in model.network.state_dict().items()
    }
    config = model.config.to_dict()
    # Each file records the other's checksum: config.json the weights', the
    # weights' metadata the config's (without that record).
    metadata = {
        "format": "pt",
        "name": model.config.name,
        "config_sha256": config_digest(config),
    }
    weights = save(state, metadata=metadata)
    config[INTEGRITY_KEY] = {"weights_sha256": hashlib.sha256(weights).hexdigest()}
    config_text = json.dumps(config, indent=2) + "\n"
    if model_card is None:
        model_card = (
            f"# {model.config.name}\n\nA picasso_astro model (revision "
            f"{model.config.revision}). See config.json for its provenance.\n"
        )
    atomic_write_bytes(directory / WEIGHTS_NAME, weights)
    atomic_write_bytes(directory / CONFIG_NAME, config_text.encode())
    atomic_write_bytes(directory / CARD_NAME, model_card.encode())
    return directory


#: Pickled weights, never loaded: their names are only recognised for messages.
PICKLE_PATTERNS = ("*.bin", "*.pt", "*.pth", "*.ckpt", "*.pkl")

#: The ``config.json`` block holding the weights' checksum.
INTEGRITY_KEY = "integrity"


def config_digest(config):
    """Return the sha256 of a config dictionary, its integrity block left out."""
    canonical = {key: value for key, value in config.items() if key != INTEGRITY_KEY}
    text = json.dumps(canonical, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def _check_integrity(directory, config, data):
    """Refuse model files that were changed after they were saved together."""
    from safetensors import safe_open

    weights_path = directory / WEIGHTS_NAME
    recorded = config.get(INTEGRITY_KEY, {}).get("weights_sha256")
    with safe_open(weights_path, framework="pt") as handle:
        metadata = handle.metadata() or {}
    saved_with = metadata.get("config_sha256")
    if recorded is None and saved_with is None:
        msg = (
            f"{directory}: the model files carry no checksums (saved by an older "
            "picasso_astro), so damage cannot be detected; save the model again "
            "with picasso_astro.hub.save_model"
        )
        warnings.warn(msg, PicassoWarning, stacklevel=4)
        return
    if recorded is not None and hashlib.sha256(data).hexdigest() != recorded:
        msg = (
            f"{weights_path} has changed since the model was saved (its sha256 is "
            f"not the one {CONFIG_NAME} records): the file is damaged or was "
            "replaced; download or export the model again"
        )
        raise PicassoModelError(msg)
    if saved_with is None or config_digest(config) != saved_with:
        msg = (
            f"{directory}: {CONFIG_NAME} and the weights do not match: the "
            "configuration is not the one these weights were saved with (it was "
            "edited, or comes from another model); restore it or export the "
            "model again"
        )
        raise PicassoModelError(msg)


def _check_bin_edges(network, weights, source):
    """One source of truth: the config's bin edges must be the weights' own."""
    for key, value in network.state_dict().items():
        if key.endswith("bin_edges") and not _same_numbers(weights[key], value):
            msg = (
                f"{source}: the bin edges of {key.split('.')[1]} in {CONFIG_NAME} "
                "differ from those the weights were trained with; restore "
                f"{CONFIG_NAME} or export the model again"
            )
            raise PicassoModelError(msg)


def _same_numbers(a, b):
    """Return whether two tensors hold the same numbers (to float32 rounding)."""
    import torch

    return bool(torch.allclose(a.float(), b.float(), rtol=0, atol=1e-6))


def read_config(path):
    """Read and validate a ``config.json``.

    Parameters
    ----------
    path : str or `~pathlib.Path`

    Returns
    -------
    config : `~picasso_astro.config.ModelConfig`
    """
    path = Path(path)
    return ModelConfig.from_dict(_config_dict(path), source=str(path))


def _config_dict(path):
    """Return the JSON object of a ``config.json``, or say why it cannot be read."""
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise _no_config(path.parent) from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        msg = (
            f"{path} is not valid JSON ({exc}); the file is damaged: download or "
            "export the model again"
        )
        raise PicassoModelError(msg) from None
    except OSError as exc:
        raise _unreadable_file(path, exc) from None


def _no_config(directory):
    if (directory / WEIGHTS_NAME).is_file():
        msg = (
            f"{directory} holds {WEIGHTS_NAME} but no {CONFIG_NAME}: the model "
            f"directory is incomplete; put back the {CONFIG_NAME} saved with these "
            "weights (the two files go together), or download or export the "
            "model again"
        )
    else:
        msg = (
            f"no {CONFIG_NAME} in {directory}: not a picasso_astro model directory "
            f"(one holds {CONFIG_NAME} and {WEIGHTS_NAME}); give such a directory "
            "(written by picasso_astro.hub.save_model or picasso-train export), or "
            "a model name that picasso-predict models lists"
        )
    return PicassoModelError(msg)


def _unreadable_file(path, exc):
    """Return the error for a model file that exists but cannot be read."""
    if isinstance(exc, PermissionError):
        remedy = f"make it readable for your user (chmod u+r {path})"
    elif isinstance(exc, IsADirectoryError):
        remedy = "it must be a file: download or export the model again"
    else:
        remedy = "check the disk, or download or export the model again"
    msg = f"{path} cannot be read ({exc.strerror or exc}); {remedy}"
    return PicassoModelError(msg)


def _check_weights(network, weights, source):
    expected = {k: tuple(v.shape) for k, v in network.state_dict().items()}
    found = {k: tuple(v.shape) for k, v in weights.items()}
    problems = [f"missing {k}" for k in expected.keys() - found.keys()]
    problems += [f"unexpected {k}" for k in found.keys() - expected.keys()]
    problems += [
        f"{k} has shape {found[k]}, config implies {expected[k]}"
        for k in expected.keys() & found.keys()
        if expected[k] != found[k]
    ]
    if problems:
        shown = "; ".join(sorted(problems)[:5])
        more = f" (and {len(problems) - 5} more)" if len(problems) > 5 else ""
        msg = (
            f"the weights in {source} do not match its {CONFIG_NAME}: {shown}{more}. "
            "The two files come from different models; re-export the model"
        )
        raise PicassoModelError(msg)


def load_model_directory(directory):
    """Load a model from a local directory in the Hub layout.

    Parameters
    ----------
    directory : str or `~pathlib.Path`

    Returns
    -------
    model : `PicassoModel`

    Raises
    ------
    PicassoModelError
        If a file is missing or damaged, or the weights do not fit the config.
    """
    from safetensors import SafetensorError
    from safetensors.torch import load

    directory = Path(directory)
    config_path = directory / CONFIG_NAME
    raw_config = _config_dict(config_path)
    config = ModelConfig.from_dict(raw_config, source=str(config_path))
    weights_path = directory / WEIGHTS_NAME
    if not weights_path.exists():
        pickles = sorted(
            p.name for pattern in PICKLE_PATTERNS for p in directory.glob(pattern)
        )
        msg = (
            f"no {WEIGHTS_NAME} in {directory}: the model directory is incomplete; "
            f"put back the {WEIGHTS_NAME} saved with its {CONFIG_NAME}, or download "
            "or export the model again"
        )
        if pickles:
            msg = (
                f"{directory} holds {', '.join(pickles)} but no {WEIGHTS_NAME}: "
                "picasso_astro never loads pickled weights (loading one can run "
                "code). Convert them where you trust the file: state = "
                "torch.load(path, weights_only=True); then "
                f"safetensors.torch.save_file(state, '{WEIGHTS_NAME}')"
            )
        raise PicassoModelError(msg)
    try:
        data = weights_path.read_bytes()
    except OSError as exc:
        raise _unreadable_file(weights_path, exc) from None
    try:
        weights = load(data)
    except (SafetensorError, ValueError) as exc:
        msg = (
            f"{weights_path} is not a readable safetensors file ({exc}): it is "
            "damaged or cut short (an interrupted download or copy?); download "
            "or export the model again"
        )
        raise PicassoModelError(msg) from None
    _check_integrity(directory, raw_config, data)
    network = config.build_network()
    _check_weights(network, weights, weights_path)
    _check_bin_edges(network, weights, directory)
    network.load_state_dict(weights)
    network.eval()
    return PicassoModel(network, config, source=str(directory))


@dataclass(frozen=True)
class ModelListing:
    """One line of `list_models`.

    Parameters
    ----------
    name : str
        What to pass to `load_model`.
    location : str
        ``"bundled"``, ``"cached"``, ``"known"`` (downloadable) or
        ``"unpublished"`` (registered but not pinned yet).
    repo_id, revision : str or None
        Where it comes from on the Hub.
    size : int or None
        Bytes of its loadable files.
    description : str
    path : `~pathlib.Path` or None
        Local directory, when bundled or cached.
    """

    name: str
    location: str
    repo_id: str | None
    revision: str | None
    size: int | None
    description: str = ""
    path: Path | None = None


def _local_size(directory):
    return sum(
        (directory / n).stat().st_size
        for n in os.listdir(directory)
        if _SAFE_FILE_RE.match(n) and (directory / n).is_file()
    )


def list_models(*, cache_dir=None):
    """List the models available: bundled, in the cache, and registered.

    Nothing is downloaded and no file is read except the bundled
    ``config.json``.

    Parameters
    ----------
    cache_dir : str or `~pathlib.Path`, optional
        As for `download_model`.

    Returns
    -------
    models : list of `ModelListing`
    """
    listings = []
    if (BUNDLED_MODEL_DIR / WEIGHTS_NAME).is_file():
        try:
            revision = read_config(BUNDLED_MODEL_DIR / CONFIG_NAME).revision
        except PicassoModelError:
            revision = None
        listings.append(
            ModelListing(
                "default",
                "bundled",
                None,
                revision,
                _local_size(BUNDLED_MODEL_DIR),
                "bundled with picasso_astro; works offline",
                BUNDLED_MODEL_DIR,
            )
        )
    cache = _download.resolve_cache_dir(cache_dir)
    snapshots = {(r, c): d for r, c, d in _download.cached_snapshots(cache)}
    for entry in _REGISTRY.values():
        directory = snapshots.pop((entry.repo_id, entry.revision), None)
        complete = directory is not None and all(
            (directory / f.filename).is_file() for f in entry.files
        )
        location = "cached" if complete else "known" if entry.pinned else "unpublished"
        listings.append(
            ModelListing(
                entry.name,
                location,
                entry.repo_id,
                entry.revision,
                entry.size,
                entry.description,
                directory if complete else None,
            )
        )
    for (repo_id, commit), directory in sorted(snapshots.items()):
        listings.append(
            ModelListing(
                repo_id,
                "cached",
                repo_id,
                commit,
                _local_size(directory),
                "downloaded by repo id",
                directory,
            )
        )
    return listings


def load_model(
    model=None,
    *,
    revision=None,
    cache_dir=None,
    endpoint=None,
    token=None,
    local_files_only=False,
    progress=True,
):
    """Load a model: the bundled default, a directory, or from the Hub.

    Parameters
    ----------
    model : str, `~pathlib.Path`, `PicassoModel` or None
        None or ``"default"`` for the model bundled with the package; an
        existing directory in the Hub layout; a registered model name (see
        `known_models`); a Hub repo id ``"org/name"``; or an already loaded
        `PicassoModel`, returned as is. A directory wins over a repo id of the
        same spelling.
    revision, cache_dir, endpoint, token, local_files_only, progress
        For Hub models, as in `download_model`. A registered model is fetched
        once and then loaded from the cache with no network access.

    Returns
    -------
    model : `PicassoModel`

    Raises
    ------
    PicassoModelError
        If the model cannot be found, fetched, or fails its checks.
    """
    if isinstance(model, PicassoModel):
        return model
    if model is not None and not isinstance(model, (str, os.PathLike)):
        msg = (
            "model must be None, 'default', a model name, a Hub repo id, a "
            f"directory or a PicassoModel, not {type(model).__name__}"
        )
        raise TypeError(msg)
    if model is None or model == "default":
        if revision is not None:
            msg = "revision= applies to Hub models, not the bundled default"
            raise PicassoInputError(msg)
        if not (BUNDLED_MODEL_DIR / WEIGHTS_NAME).is_file():
            msg = (
                "no trained default model ships with this version of picasso_astro "
                "yet; pass model= a model directory (config.json + "
                "model.safetensors), e.g. one written by picasso_astro.hub.save_model"
            )
            raise PicassoModelError(msg)
        return load_model_directory(BUNDLED_MODEL_DIR)
    path = Path(model).expanduser()
    if path.is_dir():
        return load_model_directory(path)
    directory = download_model(
        str(model),
        revision=revision,
        cache_dir=cache_dir,
        endpoint=endpoint,
        token=token,
        local_files_only=local_files_only,
        progress=progress,
    )
    loaded = load_model_directory(directory)
    entry = _REGISTRY.get(str(model))
    repo_id = entry.repo_id if entry is not None else str(model)
    loaded.source = f"{repo_id}@{directory.name}"
    return loaded
