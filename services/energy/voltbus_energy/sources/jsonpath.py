"""A small JSON path: `a.b[0].c` (Tasmota `ENERGY.Power`, Shelly `emeters[1].power`, ...)."""

from __future__ import annotations

import math
import re

_STEP = re.compile(r"([^.\[\]]+)|\[(\d+)\]")


class PathError(ValueError):
    """The path does not lead to a number in this document."""


def parse_path(path: str) -> list[str | int]:
    """The steps of a path; ValueError when it is malformed."""
    steps: list[str | int] = []
    pos = 0
    text = path.removeprefix("$").lstrip(".")
    while pos < len(text):
        found = _STEP.match(text, pos)
        if found is None:
            raise ValueError(f"bad JSON path {path!r} at {pos}")
        steps.append(found.group(1) if found.group(1) is not None else int(found.group(2)))
        pos = found.end()
        if pos < len(text) and text[pos] == ".":
            pos += 1
    return steps


def number_at(document: object, steps: list[str | int]) -> float:
    """The finite number the steps lead to."""
    value = document
    for step in steps:
        found_list = isinstance(step, int) and isinstance(value, list) and step < len(value)
        found_key = isinstance(step, str) and isinstance(value, dict) and step in value
        if found_list or found_key:
            value = value[step]  # type: ignore[index]
        else:
            raise PathError(f"no {step!r} in {str(value)[:60]}")
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise PathError(f"not a number: {str(value)[:60]}")
    try:
        number = float(value)
    except ValueError:
        raise PathError(f"not a number: {str(value)[:60]!r}") from None
    if not math.isfinite(number):
        raise PathError(f"not a finite number: {value!r}")
    return number
