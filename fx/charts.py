"""Server-side SVG for the rates page: no script, no network asset, no chart library.

Coordinates are computed with Decimal (the rates are Decimal) and written
with one decimal place; nothing here is money.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal


@dataclass(frozen=True)
class LineChart:
    width: int
    height: int
    points: str  # SVG polyline "x,y x,y …"
    low: Decimal
    high: Decimal
    first_at: datetime | None
    last_at: datetime | None
    last: Decimal | None
    count: int


PAD = 8


def line_chart(series: list[tuple[datetime, Decimal]], *, width: int = 640, height: int = 180) -> LineChart:
    if not series:
        return LineChart(width, height, "", Decimal(0), Decimal(0), None, None, None, 0)
    values = [value for _, value in series]
    low, high = min(values), max(values)
    span = (high - low) or Decimal(1)
    start, end = series[0][0], series[-1][0]
    seconds = Decimal(str(max((end - start).total_seconds(), 1)))
    inner_w, inner_h = Decimal(width - 2 * PAD), Decimal(height - 2 * PAD)
    coords = []
    for at, value in series:
        x = PAD + inner_w * Decimal(str((at - start).total_seconds())) / seconds
        y = PAD + inner_h * (high - value) / span
        coords.append(f"{x.quantize(Decimal('0.1'))},{y.quantize(Decimal('0.1'))}")
    return LineChart(width, height, " ".join(coords), low, high, start, end, values[-1], len(series))
