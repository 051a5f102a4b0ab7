"""Interleaved timing: every contender runs once per round, in alternating order, in one process.

On a shared machine the speed available to a process drifts by tens of percent within a minute, so
two loops timed one after the other are not comparable. Running A B C, then C B A, then A B C, ...
exposes each contender to the same drift; per-round ratios between neighbours cancel most of it.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass, field
from typing import Callable


@dataclass
class Rounds:
    """Per-round work rates (units per second) of each contender, in the order the rounds ran."""

    rates: dict = field(default_factory=dict)

    def best(self, name: str) -> float:
        return max(self.rates[name])

    def median(self, name: str) -> float:
        return statistics.median(self.rates[name])

    def ratios(self, name: str, reference: str) -> list:
        """Per-round ratios rate(name) / rate(reference): each pair ran side by side in the same round."""
        return [a / b for a, b in zip(self.rates[name], self.rates[reference])]

    def median_ratio(self, name: str, reference: str) -> float:
        return statistics.median(self.ratios(name, reference))


def interleave(contenders: dict, rounds: int, warmup: bool = True) -> Rounds:
    """Time ``contenders`` (name -> callable returning the units of work it did) over ``rounds`` rounds.

    Odd rounds run the contenders in reverse order, so none is always first or last. With ``warmup``
    each contender runs once untimed first (allocations, thread pools, lazy initialization).
    """
    if rounds < 1:
        raise ValueError(f"rounds must be at least 1, got {rounds}")
    names = list(contenders)
    if warmup:
        for name in names:
            contenders[name]()
    result = Rounds({name: [] for name in names})
    for r in range(rounds):
        for name in (names if r % 2 == 0 else names[::-1]):
            started = time.perf_counter()
            units = contenders[name]()
            result.rates[name].append(units / (time.perf_counter() - started))
    return result


def timed(fn: Callable[[], object]) -> float:
    """Seconds one call of ``fn`` takes (for things measured once, such as a whole training run)."""
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started
