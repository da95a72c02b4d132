"""A fake Hugging Face Hub on 127.0.0.1 and the fixtures around it.

The server answers ``HEAD``/``GET {endpoint}/{org}/{name}/resolve/{rev}/{file}``
the way the Hub does for what ``huggingface_hub.hf_hub_download`` needs:
``X-Repo-Commit``, ``ETag`` (sha256 for ``.safetensors``, the git blob hash for
other files), ``Content-Length``, ``Range`` requests, and errors with
``X-Error-Code`` (``RepoNotFound``, ``RevisionNotFound``, ``EntryNotFound``,
``GatedRepo``). Failure modes are set per file in ``FakeHub.modes``. Every
request is recorded in ``FakeHub.requests``.
"""

import hashlib
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote

REPO_ID = "picasso-test/tiny-unet"
MODEL_NAME = "tiny-test"
STALL_LIMIT_S = 10.0  # a stalled answer never outlives this, even if not released


def git_blob_sha1(data):
    return hashlib.sha1(
        b"blob %d\0" % len(data) + data, usedforsecurity=False
    ).hexdigest()


def etag_of(filename, data):
    if filename.endswith(".safetensors"):
        return hashlib.sha256(data).hexdigest()
    return git_blob_sha1(data)


class _Handler(BaseHTTPRequestHandler):
    hub = None  # set on the subclass made per server

    def log_message(self, *args):
        pass

    def do_HEAD(self):
        self._answer(head=True)

    def do_GET(self):
        self._answer(head=False)

    def _error(self, status, code=None, commit=None, head=False):
        self.send_response(status)
        if code:
            self.send_header("X-Error-Code", code)
        if commit:
            self.send_header("X-Repo-Commit", commit)
        body = b"" if head else f"error {status} {code or ''}".encode()
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _answer(self, *, head):
        hub = self.hub
        range_header = self.headers.get("Range")
        with hub.lock:
            hub.requests.append((self.command, self.path, range_header))
        parts = unquote(self.path.split("?")[0]).strip("/").split("/")
        if len(parts) < 5 or parts[2] != "resolve":
            self._error(404, "RepoNotFound", head=head)
            return
        repo_id, revision, filename = "/".join(parts[:2]), parts[3], "/".join(parts[4:])
        repo = hub.repos.get(repo_id)
        if repo is None:
            self._error(404, "RepoNotFound", head=head)
            return
        mode = hub.modes.get(filename, hub.modes.get("*"))
        if mode == "unauthorized":
            self._error(401, head=head)
            return
        if mode == "gated":
            self._error(401, "GatedRepo", head=head)
            return
        if revision not in (repo["commit"], "main"):
            self._error(404, "RevisionNotFound", head=head)
            return
        data = repo["files"].get(filename)
        if data is None:
            self._error(404, "EntryNotFound", commit=repo["commit"], head=head)
            return
        if mode == "tamper":
            data = data[:-1] + bytes([data[-1] ^ 0xFF])
        full_size = len(data)
        start = 0
        if range_header and range_header.startswith("bytes=") and not head:
            start = int(range_header[len("bytes=") :].split("-")[0])
        if not head and mode in ("drop", "stall") and start > 0:
            # A retry of a broken transfer: hang up again before any byte.
            if mode == "stall":
                hub.release.wait(STALL_LIMIT_S)
            return
        if not head and mode == "drop_once" and start == 0:
            mode = "drop"
            hub.modes[filename] = None
        body = data[start:]
        if not head and mode == "truncate":
            body = body[: len(body) // 2]
        self.send_response(206 if start else 200)
        self.send_header("X-Repo-Commit", repo["commit"])
        self.send_header("ETag", f'"{etag_of(filename, data)}"')
        self.send_header("Content-Length", str(len(body)))
        if start:
            self.send_header(
                "Content-Range", f"bytes {start}-{full_size - 1}/{full_size}"
            )
        self.end_headers()
        if head:
            return
        if mode == "stall":
            self.wfile.flush()
            hub.release.wait(STALL_LIMIT_S)
            return
        if mode == "drop":
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        self.wfile.write(body)


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        pass  # a client that timed out and hung up is part of the tests


class FakeHub:
    """A Hub look-alike serving in-memory repos on 127.0.0.1."""

    def __init__(self):
        self.repos = {}
        self.modes = {}
        self.requests = []
        self.lock = threading.Lock()
        self.release = threading.Event()
        handler = type("Handler", (_Handler,), {"hub": self})
        self._server = _Server(("127.0.0.1", 0), handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            daemon=True,
        )
        self._thread.start()

    def add_repo(self, repo_id, files):
        """Serve ``files`` (name -> bytes) as ``repo_id``; return its commit hash."""
        commit = hashlib.sha1(repo_id.encode(), usedforsecurity=False).hexdigest()
        self.repos[repo_id] = {"commit": commit, "files": dict(files)}
        return commit

    def paths_requested(self):
        with self.lock:
            return [path for _, path, _ in self.requests]

    def close(self):
        self.release.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)
