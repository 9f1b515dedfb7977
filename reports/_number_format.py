"""How every reporter writes a number: finite-number checks, significant digits in plain
notation (``n/a`` for a missing value) and ``[low, high]`` intervals. Re-exported by
:mod:`audit_sdk.reports.svg_charts`, whose tick labels use them too.
"""

from __future__ import annotations

import math

__all__ = ["format_interval", "format_number", "is_number"]


def is_number(value: object) -> bool:
    """True for a finite int or float (not bool, not None, not NaN or infinity)."""
    return (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and math.isfinite(float(value))
    )


def format_number(value: float | int | None, *, digits: int = 3) -> str:
    """``digits`` significant digits in plain notation; ``n/a`` for None or NaN.

    Large numbers keep their integer digits (``12345``), tiny ones switch to scientific
    notation (``1.23e-05``).
    """
    if value is None or isinstance(value, bool):
        return "n/a" if value is None else str(value)
    x = float(value)
    if math.isnan(x):
        return "n/a"
    if math.isinf(x):
        return "∞" if x > 0 else "-∞"
    if x == 0:
        return "0"
    if isinstance(value, int) or (abs(x) >= 10 ** (digits - 1) and x.is_integer()):
        return f"{round(x):d}"
    rounded = float(f"{x:.{digits}g}")
    magnitude = math.floor(math.log10(abs(rounded)))
    if magnitude < -3:
        return f"{x:.{digits - 1}e}"
    if magnitude >= digits - 1:
        return f"{round(rounded):d}"
    decimals = digits - 1 - magnitude
    return f"{rounded:.{decimals}f}"


def format_interval(low: float | None, high: float | None) -> str:
    """``[low, high]``, or ``n/a`` when neither end is known."""
    if not is_number(low) and not is_number(high):
        return "n/a"
    return f"[{format_number(low)}, {format_number(high)}]"
