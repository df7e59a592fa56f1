"""The book's words for numbers: percentages, differences with their intervals, glued values.

Every number the book quotes in prose is glued from a run (`glue`), formatted here once.
"""
from __future__ import annotations

from typing import Any, Mapping, Optional

from .intervals import Interval, agreed_sign

__all__ = ["glue", "pct", "points", "over_seeds_text", "comparison_sentence"]


def glue(values: Mapping[str, Any]) -> None:
    """`myst_nb.glue` every (name, text) pair without displaying it: numbers quoted in prose."""
    from myst_nb import glue as _glue
    for key, value in values.items():
        _glue(key, value, display=False)


def pct(value: float, digits: int = 1) -> str:
    """A fraction as a percentage: 0.2345 -> '23.5 %'."""
    return f"{100 * value:.{digits}f} %"


def points(interval: Interval, digits: int = 1) -> str:
    """A difference in points with its interval: '+3.2 points (95 % interval +1.0 to +5.4)'."""
    return (f"{interval.estimate:+.{digits}f} points (95 % interval {interval.low:+.{digits}f} to "
            f"{interval.high:+.{digits}f})")


def over_seeds_text(seeds: Optional[Interval]) -> str:
    return "" if seeds is None else f"; over seeds {seeds.bounds_text()}"


def comparison_sentence(a: str, b: str, d: Interval, what: str = "verb top-1",
                        seeds: Optional[Interval] = None) -> str:
    """How the book words a difference: only what its intervals allow. `d` is over validation
    segments, `seeds` (when there are several seeds) over seeds; a difference is stated only
    when both agree on its sign."""
    over_seeds = over_seeds_text(seeds)
    side = agreed_sign(d, seeds)
    if side > 0:
        return f"{a} is ahead of {b} on {what} by {points(d)}{over_seeds}"
    if side < 0:
        return f"{a} is behind {b} on {what} by {points(d)}{over_seeds}"
    if d.sign != 0:
        return (f"{a} and {b} cannot be told apart on {what}: {points(d)} over these segments, but the seeds "
                f"disagree{over_seeds}")
    return f"{a} and {b} cannot be told apart on {what}: {points(d)}, an interval that contains 0{over_seeds}"
