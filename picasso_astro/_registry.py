"""The registry of named Hub models, and downloading them safely.

Private: the public names are re-exported by `picasso_astro.hub`.
"""

import os
import re
from dataclasses import dataclass
from pathlib import Path

from . import _download
from ._download import CONFIG_NAME, WEIGHTS_NAME
from .exceptions import PicassoInputError, PicassoModelError

__all__ = []

_REPO_ID_RE = re.compile(r"^[A-Za-z0-9][\w.-]{0,95}/[\w.-]{1,96}$")
_SAFE_FILE_RE = re.compile(r"^(config\.json|[\w-][\w.-]*\.safetensors)$")
_SHA256_RE = re.compile(r"^[0-9a-f]{64}$")
_COMMIT_RE = re.compile(r"^[0-9a-f]{40}$")


@dataclass(frozen=True)
class ModelFile:
    """One file of a model on the Hub, with its pinned checksum.

    Parameters
    ----------
    filename : str
        ``config.json`` or a ``.safetensors`` file at the top of the repo.
    sha256 : str or None
        Lower-case hex sha256 of the file; None until the model is published.
    size : int or None
        Size in bytes.
    """

    filename: str
    sha256: str | None = None
    size: int | None = None

    def __post_init__(self):
        if not isinstance(self.filename, str) or not _SAFE_FILE_RE.match(self.filename):
            msg = (
                f"model file {self.filename!r} is not allowed: only config.json and "
                ".safetensors files at the top of a repository are ever read"
            )
            raise PicassoInputError(msg)
        if self.sha256 is not None and not _SHA256_RE.match(str(self.sha256)):
            msg = f"sha256 of {self.filename} must be 64 lower-case hex digits"
            raise PicassoInputError(msg)
        if self.size is not None and (not isinstance(self.size, int) or self.size < 0):
            msg = f"size of {self.filename} must be a non-negative int of bytes"
            raise PicassoInputError(msg)


@dataclass(frozen=True)
class HubModel:
    """A named model on the Hugging Face Hub, pinned to one commit.

    Parameters
    ----------
    name : str
        Short name users pass to `load_model`.
    repo_id : str
        ``"org/name"`` of the Hub repository.
    revision : str or None
        Full 40-hex commit hash; None while the model is not published, which
        makes it impossible to download.
    files : tuple of `ModelFile`
        Must include ``config.json`` and ``model.safetensors``.
    description : str
        One line for listings.
    """

    name: str
    repo_id: str
    revision: str | None
    files: tuple
    description: str = ""

    def __post_init__(self):
        object.__setattr__(self, "files", tuple(self.files))
        problem = None
        if not isinstance(self.name, str) or not re.match(r"^[\w.-]+$", self.name):
            problem = "name must be letters, digits, '_', '-' or '.'"
        elif self.name == "default":
            problem = "'default' is the bundled model"
        elif not isinstance(self.repo_id, str) or not _REPO_ID_RE.match(self.repo_id):
            problem = f"repo_id {self.repo_id!r} is not of the form 'org/name'"
        elif self.revision is not None and not _COMMIT_RE.match(str(self.revision)):
            problem = (
                f"revision {self.revision!r} must be a full 40-hex commit hash "
                "(a branch or tag can move)"
            )
        elif not all(isinstance(f, ModelFile) for f in self.files):
            problem = "files must be ModelFile objects"
        elif not {"config.json", WEIGHTS_NAME} <= {f.filename for f in self.files}:
            problem = f"files must include config.json and {WEIGHTS_NAME}"
        if problem:
            msg = f"cannot describe Hub model {self.name!r}: {problem}"
            raise PicassoInputError(msg)

    @property
    def pinned(self):
        """bool: whether the revision and every file's sha256 are known."""
        return self.revision is not None and all(f.sha256 for f in self.files)

    @property
    def size(self):
        """Total size in bytes (int), or None if a file's size is unknown."""
        sizes = [f.size for f in self.files]
        return None if None in sizes else sum(sizes)


_REGISTRY = {}


def register_model(model, *, overwrite=False):
    """Make a Hub model known by name to `load_model` and `download_model`.

    Parameters
    ----------
    model : `HubModel`
    overwrite : bool
        Replace a model already registered under the same name.

    Returns
    -------
    model : `HubModel`
    """
    if not isinstance(model, HubModel):
        msg = f"register_model takes a HubModel, not {type(model).__name__}"
        raise TypeError(msg)
    if model.name in _REGISTRY and not overwrite:
        msg = f"a model named {model.name!r} is already registered; pass overwrite=True"
        raise PicassoInputError(msg)
    _REGISTRY[model.name] = model
    return model


def unregister_model(name):
    """Forget the registered Hub model ``name`` (no error if unknown)."""
    _REGISTRY.pop(name, None)


def known_models():
    """Return the registered Hub models.

    Returns
    -------
    models : dict of str to `HubModel`
        A copy: changing it does not change the registry.
    """
    return dict(_REGISTRY)


register_model(
    HubModel(
        name="picasso-unet-sdss",
        repo_id="picasso-astro/picasso-unet-sdss",
        revision=None,  # pinned when the first trained model is published
        files=(ModelFile("config.json"), ModelFile(WEIGHTS_NAME)),
        description="PICASSO U-Net for SDSS ugriz images (not published yet)",
    )
)


def hash_model_files(directory):
    """Describe the loadable files of a model directory, for a registry entry.

    Parameters
    ----------
    directory : str or `~pathlib.Path`

    Returns
    -------
    files : tuple of `ModelFile`
        ``config.json`` and each ``.safetensors`` file, with sha256 and size.
    """
    directory = Path(directory)
    names = sorted(
        p.name
        for p in directory.iterdir()
        if p.is_file() and _SAFE_FILE_RE.match(p.name)
    )
    return tuple(
        ModelFile(
            name,
            _download.sha256_file(directory / name),
            (directory / name).stat().st_size,
        )
        for name in names
    )


def _progress_class(progress):
    if progress is True:
        return None  # huggingface_hub's bars (HF_HUB_DISABLE_PROGRESS_BARS applies)
    from tqdm import tqdm

    if progress is False or progress is None:

        class _Silent(tqdm):
            def __init__(self, *args, **kwargs):
                kwargs["disable"] = True
                super().__init__(*args, **kwargs)

        return _Silent
    if isinstance(progress, type) and issubclass(progress, tqdm):
        return progress
    msg = "progress must be True, False or a tqdm class"
    raise TypeError(msg)


def _resolve_remote(model, revision):
    """Return ``(entry or None, repo_id, revision)`` for a name or repo id."""
    if model in _REGISTRY:
        entry = _REGISTRY[model]
        if revision is not None and revision != entry.revision:
            msg = (
                f"model {model!r} is pinned to revision {entry.revision}; to load "
                f"another revision pass the repo id: "
                f"load_model({entry.repo_id!r}, revision={revision!r})"
            )
            raise PicassoInputError(msg)
        if not entry.pinned:
            msg = (
                f"model {model!r} ({entry.repo_id}) is not published yet: this "
                "version of picasso_astro has no pinned revision and checksums for "
                "it, so it cannot be downloaded safely. Upgrade picasso_astro, or "
                "pass a model directory"
            )
            raise PicassoModelError(msg)
        return entry, entry.repo_id, entry.revision
    if _REPO_ID_RE.match(model):
        return None, model, revision or "main"
    known = ", ".join(sorted(_REGISTRY)) or "none"
    msg = (
        f"model {model!r} is neither the bundled 'default', a known model name "
        f"({known}), a Hub repo id 'org/name', nor an existing model directory"
    )
    raise PicassoModelError(msg)


def download_model(
    model,
    *,
    revision=None,
    cache_dir=None,
    endpoint=None,
    token=None,
    local_files_only=False,
    progress=True,
):
    """Fetch a Hub model into the cache, or find it there, and check it.

    Only ``config.json`` and ``.safetensors`` files are requested. Each is
    checked (size and sha256 against the registry pin; for a repo id, against
    the hash the cache names it by) before this returns; a file that fails is
    removed from the cache and reported.

    Parameters
    ----------
    model : str
        A registered name (see `known_models`) or a Hub repo id ``"org/name"``.
    revision : str, optional
        For a repo id: branch, tag or commit (default ``"main"``). Registered
        models are pinned to one commit.
    cache_dir : str or `~pathlib.Path`, optional
        Default: ``$PICASSO_ASTRO_CACHE_DIR``, else the Hugging Face cache.
    endpoint : str, optional
        Hub address. Default: ``$HF_ENDPOINT``, else https://huggingface.co.
    token : str or bool, optional
        Hub token for private or gated repos; default: the saved login or
        ``$HF_TOKEN``.
    local_files_only : bool
        Use the cache only. Also on when ``HF_HUB_OFFLINE=1``.
    progress : bool or tqdm class
        Show download progress bars.

    Returns
    -------
    directory : `~pathlib.Path`
        The cached snapshot holding the checked files.

    Raises
    ------
    PicassoModelError
        If the model is unknown, unpublished, unreachable, not cached while
        offline, or a file fails its check.
    """
    entry, repo_id, revision = _resolve_remote(str(model), revision)
    cache = _download.resolve_cache_dir(cache_dir)
    endpoint = _download.resolve_endpoint(endpoint)
    offline = bool(local_files_only) or _download.is_offline()
    tqdm_class = _progress_class(progress)
    if entry is not None:
        label = f"model {entry.name!r} ({repo_id}@{revision[:12]})"
        hint = f"picasso-predict download {entry.name}"
        files = entry.files
    else:
        label = f"model {repo_id} (revision {revision})"
        hint = f"picasso-predict download {repo_id}"
        if revision != "main":
            hint += f" --revision {revision}"
        files = (ModelFile(CONFIG_NAME), ModelFile(WEIGHTS_NAME))
    blobs = cache / f"models--{repo_id.replace('/', '--')}" / "blobs"
    known_blobs = set(os.listdir(blobs)) if blobs.is_dir() else set()
    commit = revision
    directory = None
    for spec in files:
        path = _download.fetch_file(
            repo_id,
            spec.filename,
            revision=commit,
            cache_dir=cache,
            endpoint=endpoint,
            token=token,
            local_files_only=offline,
            tqdm_class=tqdm_class,
            label=label,
            fetch_hint=hint,
        )
        _download.verify_file(
            path,
            sha256=spec.sha256,
            size=spec.size,
            label=label,
            fetch_hint=hint,
            fresh=path.resolve().name not in known_blobs,
        )
        if directory is None:
            directory = path.parent
            commit = directory.name  # later files from the very same commit
    return directory
