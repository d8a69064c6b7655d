"""The status a person at a meeting reads: kept in :mod:`imier.api.render`, which the
page (imier.web) shares; this module keeps the CLI's import path."""

from ..api.render import Namer, facts, render_detail, render_short, short_line

__all__ = ["Namer", "facts", "render_detail", "render_short", "short_line"]
