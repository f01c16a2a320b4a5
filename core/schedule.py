"""Drill schedules: five-field cron patterns (minute hour day-of-month month day-of-week,
UTC), as Mistral's cron triggers take them, checked here so a bad one is refused with the
field it got wrong rather than failing later in Mistral."""

from __future__ import annotations

import re

FIELDS = (("minute", 0, 59), ("hour", 0, 23), ("day of month", 1, 31), ("month", 1, 12),
          ("day of week", 0, 7))
NAMES = {3: ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov",
             "dec"),
         4: ("sun", "mon", "tue", "wed", "thu", "fri", "sat")}
PART = re.compile(r"^(?P<range>\*|(?P<low>\w+)(?:-(?P<high>\w+))?)(?:/(?P<step>\d+))?$")


def cron_pattern(text: str) -> str:
    """``text`` if it is a five-field cron pattern, else ValueError naming what is wrong."""
    fields = text.split()
    if len(fields) != len(FIELDS):
        raise ValueError(f"a drill schedule is a cron pattern of five fields (minute hour "
                         f"day-of-month month day-of-week), not {len(fields)}: {text!r}")
    for index, (field, (label, low, high)) in enumerate(zip(fields, FIELDS, strict=True)):
        for part in field.split(","):
            found = PART.match(part.lower())
            if not found:
                raise ValueError(f"{label} {field!r} of drill schedule {text!r} is not cron")
            values = [_value(found[k], index, label, low, high, text)
                      for k in ("low", "high") if found[k]]
            if len(values) == 2 and values[0] > values[1]:
                raise ValueError(f"{label} range {part!r} of drill schedule {text!r} runs "
                                 "backwards")
            if found["step"] is not None and int(found["step"]) == 0:
                raise ValueError(f"{label} step of drill schedule {text!r} must not be 0")
    return " ".join(fields)


def _value(word: str, index: int, label: str, low: int, high: int, text: str) -> int:
    names = NAMES.get(index, ())
    if word in names:
        return names.index(word) + (1 if index == 3 else 0)
    if not word.isdigit() or not low <= int(word) <= high:
        raise ValueError(f"{label} {word!r} of drill schedule {text!r} is outside "
                         f"{low}-{high}")
    return int(word)
