"""Fetching model files from the Hugging Face Hub, checking them, cleaning up.

Private: the public entry points are in `picasso_astro.hub`. Everything that
touches ``huggingface_hub`` lives here and imports it inside functions, so
that ``import picasso_astro`` stays light.

Only the files a caller names are requested (``config.json`` and
``.safetensors`` files, checked by `picasso_astro.hub`); each one is checked
(size and sha256) before it is used, and a file that fails the check is
removed from the cache.
"""

import contextlib
import functools
import hashlib
import os
import re
from pathlib import Path

from ._package import __version__
from .exceptions import PicassoModelError

__all__ = []

#: Environment variable naming the directory where downloaded models are
#: cached (in the Hugging Face cache layout). Unset: the Hugging Face cache
#: (``HF_HUB_CACHE``, by default ``~/.cache/huggingface/hub``).
CACHE_ENV = "PICASSO_ASTRO_CACHE_DIR"

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
CARD_NAME = "README.md"

_COMMIT_RE = re.compile(r"^[0-9a-f]{40}$")
_SHA256_RE = re.compile(r"^[0-9a-f]{64}$")
_TRUE = {"1", "on", "yes", "true"}


def is_offline():
    """Whether Hub downloads are switched off (``HF_HUB_OFFLINE``), read now."""
    from huggingface_hub import constants

    env = os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in _TRUE
    return env or bool(constants.HF_HUB_OFFLINE)


def resolve_cache_dir(cache_dir=None):
    """Return the cache directory: argument, `CACHE_ENV`, else the Hub cache."""
    if cache_dir is not None:
        return Path(cache_dir).expanduser()
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]).expanduser()
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"]).expanduser()
    from huggingface_hub import constants

    return Path(constants.HF_HUB_CACHE).expanduser()


def resolve_endpoint(endpoint=None):
    """Return the Hub endpoint: argument, ``HF_ENDPOINT`` read now, else default."""
    if endpoint:
        return endpoint.rstrip("/")
    if os.environ.get("HF_ENDPOINT"):
        return os.environ["HF_ENDPOINT"].rstrip("/")
    from huggingface_hub import constants

    return constants.ENDPOINT


def sha256_file(path):
    """Return the hex sha256 of a file."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _git_blob_sha1(path):
    digest = hashlib.sha1(usedforsecurity=False)
    digest.update(f"blob {os.path.getsize(path)}\0".encode())
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def discard(path):
    """Remove a cached file: the snapshot entry and the blob it points to."""
    path = Path(path)
    blob = path.resolve()
    for target in {path, blob}:
        with contextlib.suppress(OSError):  # a read-only cache: nothing to do
            target.unlink(missing_ok=True)


def verify_file(path, *, sha256=None, size=None, label, fetch_hint, fresh):
    """Check one downloaded file before it is read; discard it if it fails.

    With ``sha256=None`` (a repo loaded by id, no pinned checksum) the file is
    checked against the hash that names its blob in the cache (sha256 for
    large files, the git blob hash for small ones), which catches damage in
    the cache but not a repo that changed on purpose.
    """
    path = Path(path)
    if sha256 is None:
        blob_name = path.resolve().name
        if _SHA256_RE.match(blob_name):
            sha256 = blob_name
        elif _COMMIT_RE.match(blob_name):
            if _git_blob_sha1(path) == blob_name:
                return
            problem = "does not match the git hash that names it in the cache"
            _fail(path, label, problem, fetch_hint, fresh)
        else:
            return  # a cache without symlinks: nothing to check against
    actual_size = path.stat().st_size
    if size is not None and actual_size != size:
        problem = f"has {actual_size} bytes where {size} were expected"
        _fail(path, label, problem, fetch_hint, fresh)
    actual = sha256_file(path)
    if actual != sha256:
        problem = f"has sha256 {actual}, expected {sha256}"
        _fail(path, label, problem, fetch_hint, fresh)


def _fail(path, label, problem, fetch_hint, fresh):
    discard(path)
    if fresh:
        why = (
            "the server sent a file that differs from the pinned one, so it was "
            "not kept. The download was damaged or tampered with, or the "
            f"repository changed; try again later ({fetch_hint})"
        )
    else:
        why = (
            "the cached copy is corrupted or was modified, so it has been "
            f"removed from the cache; fetch a fresh copy with: {fetch_hint}"
        )
    msg = f"{path.name} of {label} ({path}) {problem}: {why}"
    raise PicassoModelError(msg)


def _is_network_error(exc):
    roots = {"httpx", "httpx2", "httpcore", "requests", "urllib3"}
    if isinstance(exc, (ConnectionError, TimeoutError)):
        return True
    return any(cls.__module__.split(".")[0] in roots for cls in type(exc).__mro__)


def _first_line(exc):
    text = str(exc).strip().splitlines()
    return text[0].rstrip(".") if text else type(exc).__name__


@functools.cache
def _download_parameters():
    import inspect

    import huggingface_hub

    return frozenset(inspect.signature(huggingface_hub.hf_hub_download).parameters)


def fetch_file(
    repo_id,
    filename,
    *,
    revision,
    cache_dir,
    endpoint,
    token,
    local_files_only,
    tqdm_class,
    label,
    fetch_hint,
):
    """Download one file into the Hub cache (or find it there) and return its path.

    Every failure is turned into a `~picasso_astro.exceptions.PicassoModelError`
    that names the model and says what to do.
    """
    import huggingface_hub
    from huggingface_hub import errors

    where = f"{endpoint}/{repo_id}"
    options = {}
    if tqdm_class is not None and "tqdm_class" in _download_parameters():
        options["tqdm_class"] = tqdm_class  # older huggingface_hub: its own bars
    try:
        path = huggingface_hub.hf_hub_download(
            repo_id,
            filename,
            revision=revision,
            cache_dir=cache_dir,
            endpoint=endpoint,
            token=token,
            local_files_only=local_files_only,
            library_name="picasso_astro",
            library_version=__version__,
            **options,
        )
    except errors.GatedRepoError:
        msg = (
            f"access to {label} at {where} was refused: the repository is gated. "
            "Accept its terms on its Hub page, then log in (`hf auth login`) or set "
            "HF_TOKEN to a token of the account that accepted them"
        )
        raise PicassoModelError(msg) from None
    except errors.RepositoryNotFoundError:
        msg = (
            f"{label}: repository {repo_id!r} was not found at {endpoint}. Check the "
            "name; if the repository is private, log in (`hf auth login`) or set "
            "HF_TOKEN to a token with read access"
        )
        raise PicassoModelError(msg) from None
    except errors.RevisionNotFoundError:
        msg = f"{label}: revision {revision!r} does not exist in {where}"
        raise PicassoModelError(msg) from None
    except errors.LocalEntryNotFoundError as exc:
        if local_files_only:
            msg = (
                f"{label} is not in the local cache ({cache_dir}) and downloads are "
                "switched off (HF_HUB_OFFLINE=1 or local_files_only=True). With "
                f"network access, fetch it once: {fetch_hint}"
            )
        else:
            cause = exc.__cause__ if exc.__cause__ is not None else exc
            msg = (
                f"could not reach {endpoint} to download {filename} of {label} "
                f"({type(cause).__name__}: {_first_line(cause)}), and it is not in "
                f"the local cache ({cache_dir}). Check the network connection and "
                "HF_ENDPOINT, then try again"
            )
        raise PicassoModelError(msg) from None
    except errors.EntryNotFoundError:
        msg = (
            f"{label}: file {filename!r} is missing from {where} at revision "
            f"{revision}; the repository is not a picasso_astro model, or it is "
            "incomplete"
        )
        raise PicassoModelError(msg) from None
    except errors.HfHubHTTPError as exc:
        status = exc.response.status_code if exc.response is not None else None
        if status in (401, 403):
            msg = (
                f"access to {label} at {where} was refused (HTTP {status}): the "
                "repository is private or gated. Log in (`hf auth login`) or set "
                "HF_TOKEN to a token with read access to it"
            )
        else:
            msg = (
                f"downloading {filename} of {label} from {where} failed "
                f"({_first_line(exc)}); try again later"
            )
        raise PicassoModelError(msg) from None
    except Exception as exc:
        if not _is_network_error(exc) and not isinstance(exc, OSError):
            raise
        if "timeout" in type(exc).__name__.lower():
            problem = (
                "the server stopped answering (timed out; the limits are "
                "HF_HUB_ETAG_TIMEOUT and HF_HUB_DOWNLOAD_TIMEOUT, in seconds)"
            )
        else:
            problem = f"{type(exc).__name__}: {_first_line(exc)}"
        msg = (
            f"downloading {filename} of {label} from {where} failed: {problem}. "
            f"Nothing was kept in the cache; try again ({fetch_hint})"
        )
        raise PicassoModelError(msg) from None
    return Path(path)


def cached_snapshots(cache_dir):
    """Yield ``(repo_id, commit, snapshot_dir)`` for each cached model snapshot.

    Only directory names and file existence are looked at: nothing is read.
    """
    cache_dir = Path(cache_dir)
    if not cache_dir.is_dir():
        return
    for repo_dir in sorted(cache_dir.glob("models--*")):
        parts = repo_dir.name.split("--")[1:]
        if not parts or not (repo_dir / "snapshots").is_dir():
            continue
        repo_id = "/".join(parts)
        for snapshot in sorted((repo_dir / "snapshots").iterdir()):
            if (snapshot / "config.json").is_file() and any(
                snapshot.glob("*.safetensors")
            ):
                yield repo_id, snapshot.name, snapshot
