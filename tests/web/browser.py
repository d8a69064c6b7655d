"""Headless Chromium for the page tests (Debian's `chromium`, driven by playwright).

Playwright's own browser download cannot work here (no network but 127.0.0.1),
so the system browser is launched by path. Tests skip, saying why, only when
there is no browser at all; `.ci/run` installs it.
"""

from __future__ import annotations

import functools
import http.server
import os
import shutil
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

STATIC = Path(__file__).resolve().parents[2] / "src" / "imier" / "web" / "static"


def chromium_path() -> str | None:
    """The system Chromium, or None."""
    env = os.environ.get("IMIER_CHROMIUM")
    if env:
        return env if Path(env).exists() else None
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    return None


def why_no_browser() -> str | None:
    """Why the browser tests cannot run, or None when they can."""
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "playwright is not installed (pip install -e '.[test]')"
    if chromium_path() is None:
        return "no chromium on this machine (apt-get install chromium; .ci/run does it)"
    return None


def launch(pw: Any) -> Any:
    return pw.chromium.launch(
        executable_path=chromium_path(),
        args=["--no-sandbox", "--disable-dev-shm-usage", "--no-first-run"],
    )


class _Quiet(http.server.SimpleHTTPRequestHandler):
    extensions_map = {**http.server.SimpleHTTPRequestHandler.extensions_map,
                      ".js": "text/javascript", ".mjs": "text/javascript"}

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        pass


@contextmanager
def static_server(root: Path = STATIC) -> Iterator[str]:
    """The static files alone over http://127.0.0.1 (for the codec: no node needed)."""
    handler = functools.partial(_Quiet, directory=str(root))
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    try:
        yield f"http://127.0.0.1:{srv.server_address[1]}"
    finally:
        srv.shutdown()
        srv.server_close()
