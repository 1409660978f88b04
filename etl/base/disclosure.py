"""Disclosure control (SPEC §9): the one policy every figure leaving the organisation passes."""

from __future__ import annotations

from dataclasses import dataclass

from etl.base.registry import Metric


@dataclass(frozen=True)
class Disclosure:
    """SPEC §9: counts from 1 to threshold - 1 become "<threshold"; a rate whose denominator
    is below the threshold becomes null. Amounts are not figures about people: unchanged."""

    threshold: int
    enabled: bool = True

    @property
    def mask(self) -> str:
        """How a suppressed count is shown: "<5" with the default threshold."""
        return f"<{self.threshold}"

    def count(self, value: int | None) -> int | str | None:
        """A count, or the mask when it is from 1 to threshold - 1."""
        if value is None or not self.enabled:
            return value
        return self.mask if 0 < value < self.threshold else value

    def rate(self, value: float | None, denominator: int | None) -> float | None:
        """A rate, or None when its denominator is below the threshold."""
        if value is None or not self.enabled:
            return value
        return None if (denominator or 0) < self.threshold else value

    def metric(self, metric: Metric, row: dict):
        """The value of `metric` in a mart row, after disclosure control."""
        value = row[metric.column]
        if metric.disclosure == "count":
            return self.count(value)
        if metric.disclosure == "rate":
            return self.rate(value, row[metric.denominator_column])
        return amount(value)


def amount(value) -> float | None:
    """A euro amount as a JSON number with at most 2 decimals."""
    return None if value is None else round(float(value), 2)
