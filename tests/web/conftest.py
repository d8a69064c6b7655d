"""Shared by the page tests (webfront) and the API tests (webserver): keep it small."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from .browser import launch, why_no_browser


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    """One headless Chromium for the session; skips, saying why, if there is none."""
    reason = why_no_browser()
    if reason:
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = launch(pw)
        try:
            yield b
        finally:
            b.close()
