"""Model files: the Hub layout on disk, the bundled default, loading safely.

A model is a directory in the Hugging Face Hub layout::

    config.json         architecture, bands, scaling, properties, provenance
    model.safetensors   the weights (never pickle)
    README.md           the model card

Only ``config.json`` and ``.safetensors`` files are ever read.
"""

import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from .config import ModelConfig
from .exceptions import PicassoModelError

__all__ = [
    "BUNDLED_MODEL_DIR",
    "PicassoModel",
    "load_model",
    "load_model_directory",
    "read_config",
    "save_model",
]

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
CARD_NAME = "README.md"

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


def _atomic_write_bytes(path, data):
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


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
    weights = save(state, metadata={"format": "pt", "name": model.config.name})
    config_text = json.dumps(model.config.to_dict(), indent=2) + "\n"
    if model_card is None:
        model_card = (
            f"# {model.config.name}\n\nA picasso_astro model (revision "
            f"{model.config.revision}). See config.json for its provenance.\n"
        )
    _atomic_write_bytes(directory / WEIGHTS_NAME, weights)
    _atomic_write_bytes(directory / CONFIG_NAME, config_text.encode())
    _atomic_write_bytes(directory / CARD_NAME, model_card.encode())
    return directory


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
    try:
        config = json.loads(path.read_text())
    except FileNotFoundError:
        msg = f"no {CONFIG_NAME} in {path.parent}: not a picasso_astro model directory"
        raise PicassoModelError(msg) from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        msg = f"{path} is not valid JSON ({exc}); the file is damaged"
        raise PicassoModelError(msg) from None
    return ModelConfig.from_dict(config, source=str(path))


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
    from safetensors.torch import load_file

    directory = Path(directory)
    config = read_config(directory / CONFIG_NAME)
    weights_path = directory / WEIGHTS_NAME
    if not weights_path.is_file():
        msg = f"no {WEIGHTS_NAME} in {directory}: the model directory is incomplete"
        raise PicassoModelError(msg)
    try:
        weights = load_file(weights_path)
    except (SafetensorError, OSError, ValueError) as exc:
        msg = f"{weights_path} is not a readable safetensors file ({exc})"
        raise PicassoModelError(msg) from None
    network = config.build_network()
    _check_weights(network, weights, weights_path)
    network.load_state_dict(weights)
    network.eval()
    return PicassoModel(network, config, source=str(directory))


def load_model(model=None):
    """Load a model by name, from a directory, or the bundled default.

    Parameters
    ----------
    model : str, `~pathlib.Path`, `PicassoModel` or None
        None or ``"default"`` for the model bundled with the package; a
        directory in the Hub layout; or an already loaded `PicassoModel`.

    Returns
    -------
    model : `PicassoModel`
    """
    if isinstance(model, PicassoModel):
        return model
    if model is None or model == "default":
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
    msg = (
        f"model {str(model)!r} is neither the bundled 'default' nor an existing "
        "model directory"
    )
    raise PicassoModelError(msg)
