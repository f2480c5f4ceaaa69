"""`optical-memory web`: the web page alone, on 127.0.0.1 unless told otherwise.

The token is `serve --http`'s (``OPTICAL_MEMORY_TOKEN``, or the archive's ``http-token`` file); its
path is logged, never the token. ``--open`` logs the browser in without putting the token on a
command line other users can read: it writes a page (mode 0600, in a private temporary folder) that
redirects to ``?token=...`` and opens that file, as Jupyter does.
"""

from __future__ import annotations

import logging
import os
import tempfile
import threading
import time
import webbrowser
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from urllib.parse import quote

from optical_memory.config import Config
from optical_memory.memory import Memory
from optical_memory_mcp.web.guard import ASGIApp
from optical_memory_mcp.web.html import esc
from optical_memory_mcp.web.routes import web_app

__all__ = ["running", "serve_web"]

log = logging.getLogger(__name__)


def _browser_url(host: str) -> str:
    return "127.0.0.1" if host in ("0.0.0.0", "::", "") else f"[{host}]" if ":" in host else host


def _open_logged_in(url: str, token: str, folder: Path) -> None:
    page = folder / "open.html"
    target = f"{url}/?token={quote(token, safe='')}"
    fd = os.open(page, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(
            f'<!doctype html><meta charset="utf-8"><meta http-equiv="refresh" content="0;url={esc(target)}">'
            f'<meta name="referrer" content="no-referrer"><a href="{esc(target)}">open optical-memory</a>'
        )
    webbrowser.open(page.as_uri())


def serve_web(config: Config, host: str, port: int, open_browser: bool = False) -> None:
    """Serve the web page until interrupted (uvicorn, logging to stderr)."""
    import uvicorn

    from optical_memory_mcp.http import token_for

    # a person looking is not the agent recalling: reading a faded page here never writes it again
    memory = Memory(replace(config, recall_reconsolidates=False))
    try:
        token = token_for(config)
        app = web_app(memory, token, host)
        url = f"http://{_browser_url(host)}:{port}"
        log.info("optical-memory web page at %s (archive %s)", url, config.archive.path)
        with tempfile.TemporaryDirectory(prefix="optical-memory-") as private:  # mode 0700
            if open_browser:
                threading.Timer(0.5, _open_logged_in, (url, token, Path(private))).start()
            uvicorn.run(app, host=host, port=port, log_level="warning")
    finally:
        memory.close()


@contextmanager
def running(app: ASGIApp, host: str = "127.0.0.1", port: int = 0) -> Iterator[str]:
    """Serve `app` on a thread of this process while inside the block; yields its base URL (tests, bench)."""
    import uvicorn

    server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, name="optical-memory-web", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError(f"the web server did not start on {host}:{port}")
        time.sleep(0.01)
    bound = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://{_browser_url(host)}:{bound}"
    finally:
        server.should_exit = True
        thread.join(10)
