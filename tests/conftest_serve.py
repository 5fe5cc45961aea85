"""A real desk (`provenance serve`'s app under uvicorn) on 127.0.0.1, for the API and page tests."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import httpx
import pytest

from provenance.api import Library
from provenance.serve import auth, jobs
from provenance.serve.app import ServeConfig, build_app
from provenance.settings import Settings

__all__ = ["RunningDesk", "start_desk"]


@dataclass
class RunningDesk:
    base: str
    token: str  # an active token, named "editor"
    library: Library
    upload_dir: Path  # where the server keeps uploads until their jobs end

    def client(self, token: str | None = "default", **kw: object) -> httpx.Client:
        token = self.token if token == "default" else token
        headers = {"authorization": f"Bearer {token}"} if token else {}
        return httpx.Client(base_url=self.base, headers=headers, timeout=60, **kw)

    def wait(self, client: httpx.Client, status_url: str, timeout_s: float = 120) -> dict:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            job = client.get(status_url).json()
            if job["status"] in ("done", "failed"):
                return job
            time.sleep(0.2)
        raise AssertionError(f"{status_url} not finished after {timeout_s} s: {job}")


@pytest.fixture
def start_desk() -> Iterator[Callable[..., RunningDesk]]:
    """start_desk(settings, allow_private_urls=False, max_upload=...) -> RunningDesk; stopped after the test."""
    import uvicorn

    started: list[tuple[uvicorn.Server, threading.Thread, Library]] = []

    def start(settings: Settings, *, allow_private_urls: bool = False, max_upload: int = 2 * 1024**3,
              workers: int = 2) -> RunningDesk:
        library = Library.from_settings(replace(settings, trust_named_host=False,
                                                allow_private_urls=allow_private_urls))
        token, _ = auth.create_token(library.engine, "editor")
        app = build_app(library, ServeConfig(allow_private_urls=allow_private_urls, max_upload=max_upload),
                        jobs.ThreadJobRunner(library, workers=workers))
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
        thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True, name="desk")
        thread.start()
        deadline = time.monotonic() + 20
        while not server.started:
            if time.monotonic() > deadline or not thread.is_alive():
                raise RuntimeError("the desk did not start")
            time.sleep(0.05)
        started.append((server, thread, library))
        return RunningDesk(base=f"http://127.0.0.1:{port}", token=token, library=library,
                           upload_dir=app.app.state.desk.upload_dir)

    yield start
    for server, thread, library in started:
        server.should_exit = True
        thread.join(timeout=30)
        library.close()
