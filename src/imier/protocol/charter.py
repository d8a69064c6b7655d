"""A body's charter: the parameters of its decision procedure (docs/rules.md s.1).

Ratios are exact :class:`fractions.Fraction`; durations are integer
milliseconds. On the wire and in scenario files a charter is a map of
strings: ratios ``"a/b"``, durations seconds (``"90"``) or with a unit
(``"90s"``, ``"10m"``, ``"3h"``, ``"3d"``), ``combine`` one of the modes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, fields, replace
from fractions import Fraction
from typing import Any, Mapping

from .errors import Rejected

__all__ = [
    "Charter",
    "DEFAULT_CHARTER",
    "RATIO_KEYS",
    "DURATION_KEYS",
    "COMBINE_MODES",
    "parse_ratio",
    "parse_duration_ms",
    "format_ratio",
    "format_duration",
]

RATIO_KEYS = (
    "quorum",
    "first_threshold",
    "final_threshold",
    "amendment_threshold",
    "contention_floor",
    "recall_threshold",
)
DURATION_KEYS = (
    "discussion",
    "vote_window",
    "amendment_window",
    "contention_window",
    "mandate_term",
    "seal_window",
)
COMBINE_MODES = ("verdicts", "support", "population")

_RATIO_RE = re.compile(r"^(\d{1,9})/(\d{1,9})$")
_DURATION_RE = re.compile(r"^(\d{1,12})(ms|s|m|h|d)?$")
_UNIT_MS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000, None: 1000}
# A year is plenty for any window; it keeps timestamps far from overflow.
MAX_DURATION_MS = 366 * 86_400_000


def parse_ratio(text: Any, *, field: str) -> Fraction:
    """``"a/b"`` (or an integer ``0``/``1``) to an exact ratio in [0, 1]."""
    if isinstance(text, int) and not isinstance(text, bool) and text in (0, 1):
        return Fraction(text)
    if not isinstance(text, str):
        raise Rejected("bad_charter", "a ratio is written as a string 'a/b'", field=field)
    m = _RATIO_RE.match(text.strip())
    if not m:
        raise Rejected("bad_charter", f"{text!r} is not a ratio 'a/b'", field=field)
    num, den = int(m.group(1)), int(m.group(2))
    if den == 0:
        raise Rejected("bad_charter", "ratio denominator is zero", field=field)
    value = Fraction(num, den)
    if value > 1:
        raise Rejected("bad_charter", f"ratio {text} is above 1", field=field)
    return value


def parse_duration_ms(text: Any, *, field: str) -> int:
    """Seconds (int or string) or a string with a unit, to positive milliseconds."""
    if isinstance(text, bool):
        raise Rejected("bad_charter", "a duration is seconds or '10m'/'3d'", field=field)
    if isinstance(text, int):
        ms = text * 1000
    elif isinstance(text, str):
        m = _DURATION_RE.match(text.strip())
        if not m:
            raise Rejected(
                "bad_charter", f"{text!r} is not a duration (e.g. 90, 90s, 10m, 3d)", field=field
            )
        ms = int(m.group(1)) * _UNIT_MS[m.group(2)]
    else:
        raise Rejected("bad_charter", "a duration is seconds or '10m'/'3d'", field=field)
    if ms <= 0:
        raise Rejected("bad_charter", "durations must be positive", field=field)
    if ms > MAX_DURATION_MS:
        raise Rejected("bad_charter", "durations are at most 366 days", field=field)
    return ms


def format_ratio(value: Fraction) -> str:
    return f"{value.numerator}/{value.denominator}"


def format_duration(ms: int) -> str:
    """Canonical wire form of a duration: ``"<n>ms"`` unless it is whole seconds."""
    if ms % 1000 == 0:
        return f"{ms // 1000}s"
    return f"{ms}ms"


@dataclass(frozen=True, kw_only=True)
class Charter:
    quorum: Fraction = Fraction(1, 2)
    first_threshold: Fraction = Fraction(9, 10)
    final_threshold: Fraction = Fraction(2, 3)
    amendment_threshold: Fraction = Fraction(1, 2)
    contention_floor: Fraction = Fraction(1, 2)
    recall_threshold: Fraction = Fraction(1, 2)
    combine: str = "verdicts"
    discussion: int = 3 * 86_400_000
    vote_window: int = 2 * 86_400_000
    amendment_window: int = 2 * 86_400_000
    contention_window: int = 7 * 86_400_000
    mandate_term: int = 2_551_443_000
    seal_window: int = 86_400_000  # tellers seal a window within this after its close (s.10)

    def __post_init__(self) -> None:
        for key in RATIO_KEYS:
            v = getattr(self, key)
            if not isinstance(v, Fraction) or not (0 <= v <= 1):
                raise Rejected("bad_charter", "must be a ratio in [0, 1]", field=key)
        for key in DURATION_KEYS:
            v = getattr(self, key)
            if not isinstance(v, int) or isinstance(v, bool) or not (0 < v <= MAX_DURATION_MS):
                raise Rejected("bad_charter", "must be a positive duration", field=key)
        if self.combine not in COMBINE_MODES:
            raise Rejected(
                "bad_charter", f"must be one of {', '.join(COMBINE_MODES)}", field="combine"
            )
        # docs/rules.md s.7.6: contention_floor <= final_threshold <= first_threshold.
        if not (self.contention_floor <= self.final_threshold <= self.first_threshold):
            raise Rejected(
                "incoherent_charter",
                "needs contention_floor <= final_threshold <= first_threshold",
                field="charter",
            )

    def with_changes(self, changes: Mapping[str, Any]) -> "Charter":
        """This charter with ``changes`` (wire strings) applied; validates everything."""
        return replace(self, **parse_changes(changes))

    def to_wire(self) -> dict[str, str]:
        out: dict[str, str] = {}
        for f in fields(self):
            v = getattr(self, f.name)
            if f.name in RATIO_KEYS:
                out[f.name] = format_ratio(v)
            elif f.name in DURATION_KEYS:
                out[f.name] = format_duration(v)
            else:
                out[f.name] = v
        return out


def parse_changes(changes: Mapping[str, Any]) -> dict[str, Any]:
    """Wire/CLI charter entries to typed values; names the bad key."""
    if not isinstance(changes, Mapping):
        raise Rejected("bad_charter", "must be a map of key to value", field="charter")
    out: dict[str, Any] = {}
    for key, raw in changes.items():
        if key in RATIO_KEYS:
            out[key] = parse_ratio(raw, field=f"charter.{key}")
        elif key in DURATION_KEYS:
            out[key] = parse_duration_ms(raw, field=f"charter.{key}")
        elif key == "combine":
            if raw not in COMBINE_MODES:
                raise Rejected(
                    "bad_charter",
                    f"must be one of {', '.join(COMBINE_MODES)}",
                    field="charter.combine",
                )
            out[key] = raw
        else:
            raise Rejected("bad_charter", f"unknown charter key {key!r}", field="charter")
    return out


DEFAULT_CHARTER = Charter()
