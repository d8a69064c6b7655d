"""Exact shares and the threshold tests of docs/rules.md s.1 (no floating point).

A :class:`Share` is a count over a count, kept unreduced: ``"14/20"`` says
how many hands were counted, which ``"7/10"`` would hide. The tests are the rule book's, written as
cross-multiplications so that nothing is ever rounded:

* ``meets``:   ``num * b >= a * den``   (thresholds, quorum)
* ``exceeds``: ``num * b >  a * den``   (amendments, recall: strict)
* ``below``:   ``num * b <  a * den``   (the contention floor)

A share with ``den == 0`` is *no share*: it meets, exceeds and is below
nothing, except that :meth:`Share.below` treats it as below every floor
(a body whose support has vanished has no majority left to keep anything).
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from typing import Iterable

__all__ = ["Share", "Rule", "mean_share", "ratio_text"]


def ratio_text(value: Fraction) -> str:
    """A threshold as people read it: ``9/10``."""
    return f"{value.numerator}/{value.denominator}"


@dataclass(frozen=True, kw_only=True, order=False)
class Share:
    num: int
    den: int

    def __post_init__(self) -> None:
        if self.num < 0 or self.den < 0 or self.num > self.den and self.den != 0:
            raise ValueError(f"a share is 0 <= num <= den, got {self.num}/{self.den}")
        if self.den == 0 and self.num != 0:
            raise ValueError("a share over nothing is 0/0")

    @classmethod
    def of(cls, value: Fraction) -> "Share":
        return cls(num=value.numerator, den=value.denominator)

    @property
    def defined(self) -> bool:
        return self.den > 0

    @property
    def value(self) -> Fraction:
        if not self.defined:
            raise ValueError("0/0 has no value")
        return Fraction(self.num, self.den)

    def meets(self, threshold: Fraction) -> bool:
        return self.defined and self.num * threshold.denominator >= threshold.numerator * self.den

    def exceeds(self, threshold: Fraction) -> bool:
        return self.defined and self.num * threshold.denominator > threshold.numerator * self.den

    def below(self, floor: Fraction) -> bool:
        if not self.defined:
            return True
        return self.num * floor.denominator < floor.numerator * self.den

    def text(self) -> str:
        return f"{self.num}/{self.den}"

    def __str__(self) -> str:
        return self.text()


@dataclass(frozen=True, kw_only=True)
class Rule:
    """Which charter ratio a vote is judged by, and how (``meets`` or ``exceeds``)."""

    key: str  # a ratio key of the charter, e.g. "first_threshold"
    strict: bool  # True: support must be greater than the ratio

    def passes(self, support: Share, threshold: Fraction) -> bool:
        return support.exceeds(threshold) if self.strict else support.meets(threshold)


def mean_share(shares: Iterable[Share]) -> Share:
    """The mean of defined shares (``support`` combine mode), as an exact share; 0/0 if none."""
    values = [s.value for s in shares if s.defined]
    if not values:
        return Share(num=0, den=0)
    return Share.of(sum(values, Fraction(0)) / len(values))
