"""What a run's responses cost, from a price the user gives (`cvbench run --price IN/OUT`).

cvbench ships no price table: list prices change without notice and differ by account, batch
and cache discounts, so a number we made up would be silently wrong. A provider-reported cost
(`Usage.cost_usd` set by an adapter) always wins over the computed one.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from cvbench.core.types import Usage


@dataclass(frozen=True)
class Price:
    """US dollars per million input and output tokens."""

    input_per_mtok: float
    output_per_mtok: float

    def __post_init__(self) -> None:
        for name in ("input_per_mtok", "output_per_mtok"):
            value = getattr(self, name)
            if not math.isfinite(value) or value < 0:
                raise ValueError(f"price {name} must be a finite number >= 0, got {value}")

    def cost(self, input_tokens: int, output_tokens: int) -> float:
        return (input_tokens * self.input_per_mtok + output_tokens * self.output_per_mtok) / 1_000_000

    def as_dict(self) -> dict[str, float]:
        return {"input_usd_per_mtok": self.input_per_mtok, "output_usd_per_mtok": self.output_per_mtok}


def parse_price(text: str) -> Price:
    """ "2.5/10" -> Price(2.5, 10.0): USD per million input / output tokens."""
    parts = text.replace(",", "/").split("/")
    if len(parts) != 2:
        raise ValueError(
            f"--price {text!r}: expected IN/OUT, US dollars per million input and output tokens (e.g. 2.5/10)"
        )
    try:
        values = [float(p.strip().lstrip("$")) for p in parts]
    except ValueError:
        raise ValueError(f"--price {text!r}: both parts must be numbers (e.g. 2.5/10)") from None
    return Price(*values)


def response_cost(usage: Usage, price: Price | None) -> float | None:
    """The provider's reported cost if any, else the cost at `price`, else None (unknown)."""
    if usage.cost_usd is not None:
        return usage.cost_usd
    if price is None:
        return None
    return price.cost(usage.input_tokens, usage.output_tokens)
