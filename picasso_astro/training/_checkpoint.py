"""Training checkpoints: safetensors plus JSON, atomic, hash-checked, no pickle."""

import copy
import hashlib
import json
from pathlib import Path

import torch

from .._atomic import atomic_write_bytes
from ..config import ModelConfig
from ..exceptions import PicassoInputError
from ..hub import PicassoModel

__all__ = [
    "CHECKPOINT_FORMAT_VERSION",
    "CHECKPOINT_STATE",
    "load_checkpoint",
    "model_from_checkpoint",
    "save_checkpoint",
    "unflatten_optimizer",
]

#: Version of the checkpoint layout written by `save_checkpoint`.
CHECKPOINT_FORMAT_VERSION = 1

CHECKPOINT_WEIGHTS = "checkpoint.safetensors"
CHECKPOINT_STATE = "checkpoint.json"


def _flatten_optimizer(state_dict):
    tensors, plain = {}, {"state": {}, "param_groups": state_dict["param_groups"]}
    for param_id, state in state_dict["state"].items():
        entry = {}
        for key, value in state.items():
            if isinstance(value, torch.Tensor):
                name = f"optimizer.state.{param_id}.{key}"
                tensors[name] = value.detach().cpu().contiguous()
                entry[key] = {"tensor": name}
            else:
                entry[key] = {"value": value}
        plain["state"][str(param_id)] = entry
    return tensors, plain


def unflatten_optimizer(plain, tensors, device):
    state = {}
    for param_id, entry in plain["state"].items():
        values = {}
        for key, spec in entry.items():
            if "tensor" in spec:
                value = tensors[spec["tensor"]]
                # Adam keeps "step" on the CPU unless capturable/fused.
                values[key] = value if key == "step" else value.to(device)
            else:
                values[key] = spec["value"]
        state[int(param_id)] = values
    return {"state": state, "param_groups": copy.deepcopy(plain["param_groups"])}


def save_checkpoint(directory, *, network, optimizer, state):
    """Write ``checkpoint.safetensors`` and ``checkpoint.json`` atomically.

    Parameters
    ----------
    directory : str or `~pathlib.Path`
        The run directory.
    network : `torch.nn.Module`
        The (unwrapped) network.
    optimizer : `torch.optim.Optimizer`
    state : dict
        JSON-ready training state (configs, epoch, global step, ...).

    Notes
    -----
    Tensors go to safetensors under ``model.*``, ``optimizer.state.<id>.<key>``
    and ``rng.torch`` (and ``rng.cuda.<i>``); the rest of the optimizer state
    dict (param groups, non-tensor values) and ``state`` go to JSON, which also
    records the sha256 of the safetensors file so that a mismatched pair is
    refused. Each file is written to a temporary name and renamed.
    """
    from safetensors.torch import save

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    tensors = {
        f"model.{k}": v.detach().cpu().contiguous()
        for k, v in network.state_dict().items()
    }
    optim_tensors, optim_plain = _flatten_optimizer(optimizer.state_dict())
    tensors.update(optim_tensors)
    tensors["rng.torch"] = torch.get_rng_state()
    if torch.cuda.is_available():
        for i, rng in enumerate(torch.cuda.get_rng_state_all()):
            tensors[f"rng.cuda.{i}"] = rng
    data = save(tensors, metadata={"format": "pt"})
    record = dict(state)
    record.update(
        format="picasso_astro-checkpoint",
        format_version=CHECKPOINT_FORMAT_VERSION,
        optimizer=optim_plain,
        weights_sha256=hashlib.sha256(data).hexdigest(),
    )
    atomic_write_bytes(directory / CHECKPOINT_WEIGHTS, data)
    text = json.dumps(record, indent=1) + "\n"
    atomic_write_bytes(directory / CHECKPOINT_STATE, text.encode())


def load_checkpoint(directory):
    """Read a checkpoint written by `save_checkpoint`.

    Parameters
    ----------
    directory : str or `~pathlib.Path`
        The run directory.

    Returns
    -------
    state : dict
        The JSON part.
    tensors : dict of str to `torch.Tensor`
        The safetensors part.

    Raises
    ------
    PicassoInputError
        If the files are missing, damaged or do not belong together.
    """
    from safetensors.torch import load

    directory = Path(directory)
    state_path = directory / CHECKPOINT_STATE
    weights_path = directory / CHECKPOINT_WEIGHTS
    if not state_path.is_file() or not weights_path.is_file():
        msg = (
            f"no checkpoint in {directory} (need {CHECKPOINT_STATE} and "
            f"{CHECKPOINT_WEIGHTS}); train first or point to a run directory"
        )
        raise PicassoInputError(msg)
    try:
        state = json.loads(state_path.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        msg = f"{state_path} is damaged ({exc}); resume from another run"
        raise PicassoInputError(msg) from None
    if state.get("format_version") != CHECKPOINT_FORMAT_VERSION:
        msg = (
            f"{state_path} has checkpoint format {state.get('format_version')!r}; "
            f"this version reads {CHECKPOINT_FORMAT_VERSION}"
        )
        raise PicassoInputError(msg)
    data = weights_path.read_bytes()
    if hashlib.sha256(data).hexdigest() != state.get("weights_sha256"):
        msg = (
            f"{weights_path} does not match {state_path} (sha256 differs): the "
            "checkpoint was interrupted or mixed with another run"
        )
        raise PicassoInputError(msg)
    return state, load(data)


def model_from_checkpoint(directory):
    """Return the `~picasso_astro.hub.PicassoModel` stored in a run directory."""
    state, tensors = load_checkpoint(directory)
    config = ModelConfig.from_dict(state["model_config"], source=str(directory))
    network = config.build_network()
    network.load_state_dict(
        {k[len("model.") :]: v for k, v in tensors.items() if k.startswith("model.")}
    )
    network.eval()
    return PicassoModel(network, config, source=str(directory)), state
