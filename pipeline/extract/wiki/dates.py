"""Date magic words and ``{{#time:}}`` pinned to a dump's date (never the clock's).

wikiextractor fills ``CURRENTYEAR`` etc. from ``time.strftime()`` and renders ``{{#time:}}`` as
nothing; :mod:`pipeline.extract.wiki.clean` evaluates both here instead, at the dump's date:

* :func:`magic_words`: every date/time magic word (``currentyear``, ``localdayname``...) as
  strings, for wikiextractor's ``MagicWords`` table.
* :func:`sharp_time`: ``{{#time: fmt | date}}`` / ``{{#timel:}}`` with PHP format codes.
* :func:`as_utc`: a dump date as an aware UTC ``datetime``.

English month and day names only (a dump's siteinfo carries no localised names).
"""

from __future__ import annotations

import re
from datetime import datetime, timezone

MONTHS = "January February March April May June July August September October November December"
MONTHS = MONTHS.split()
DAYS = "Monday Tuesday Wednesday Thursday Friday Saturday Sunday".split()


def as_utc(when: datetime) -> datetime:
    """``when`` as aware UTC; a naive datetime is taken to be UTC already."""
    return (when if when.tzinfo else when.replace(tzinfo=timezone.utc)).astimezone(timezone.utc)


def magic_words(when: datetime) -> dict[str, str]:
    """Every date/time magic word, lower-cased, evaluated at ``when`` (UTC, English names).

    As MediaWiki: ``currentday`` unpadded, ``currentday2`` padded, ``currentdow`` 0 = Sunday,
    ``currenttime`` ``HH:MM``; ``local*`` equal ``current*`` (a dump carries no timezone).
    """
    when = when.astimezone(timezone.utc)
    month = MONTHS[when.month - 1]
    values = {
        "year": f"{when.year}",
        "month": f"{when.month:02d}",
        "month1": f"{when.month}",
        "monthname": month,
        "monthnamegen": month,
        "monthabbrev": month[:3],
        "day": f"{when.day}",
        "day2": f"{when.day:02d}",
        "dayname": DAYS[when.weekday()],
        "time": f"{when.hour:02d}:{when.minute:02d}",
        "hour": f"{when.hour:02d}",
        "week": f"{when.isocalendar()[1]}",
        "dow": f"{(when.weekday() + 1) % 7}",
        "timestamp": when.strftime("%Y%m%d%H%M%S"),
    }
    return {p + k: v for p in ("current", "local") for k, v in values.items()}


_DATE_INPUTS = (
    "%Y-%m-%dT%H:%M:%SZ",
    "%Y-%m-%dT%H:%M:%S",
    "%Y-%m-%d %H:%M:%S",
    "%Y-%m-%d",
    "%Y%m%d%H%M%S",
    "%d %B %Y",
    "%B %d, %Y",
    "%B %d %Y",
    "%d %b %Y",
    "%b %d, %Y",
    "%B %Y",
    "%Y",
)
_PHP_CODES = {
    "Y": lambda d: f"{d.year}",
    "y": lambda d: f"{d.year % 100:02d}",
    "n": lambda d: f"{d.month}",
    "m": lambda d: f"{d.month:02d}",
    "M": lambda d: MONTHS[d.month - 1][:3],
    "F": lambda d: MONTHS[d.month - 1],
    "j": lambda d: f"{d.day}",
    "d": lambda d: f"{d.day:02d}",
    "D": lambda d: DAYS[d.weekday()][:3],
    "l": lambda d: DAYS[d.weekday()],
    "N": lambda d: f"{d.weekday() + 1}",
    "w": lambda d: f"{(d.weekday() + 1) % 7}",
    "z": lambda d: f"{d.timetuple().tm_yday - 1}",
    "W": lambda d: f"{d.isocalendar()[1]:02d}",
    "G": lambda d: f"{d.hour}",
    "H": lambda d: f"{d.hour:02d}",
    "i": lambda d: f"{d.minute:02d}",
    "s": lambda d: f"{d.second:02d}",
    "U": lambda d: f"{int(d.timestamp())}",
}
_QUOTED = re.compile(r'"([^"]*)"')


def sharp_time(fmt: str, date: str, now: datetime) -> str:
    """``{{#time: fmt | date}}`` with ``now`` as the current time.

    ``date`` empty or ``now`` means ``now``; absolute dates in common forms are parsed;
    anything else (relative dates) renders as ``""``, as wikiextractor renders every ``#time``.
    Format: the PHP codes in ``_PHP_CODES``, ``"quoted"`` and ``\\x`` literals; of MediaWiki's
    ``x`` codes, ``xg`` is the month name and ``xn``/``xN`` are ignored (other ``xY`` read as
    ``Y``); other characters are copied.
    """
    date = " ".join(date.split())
    when = now if date.lower() in ("", "now") else None
    for pattern in _DATE_INPUTS if when is None else ():
        try:
            when = datetime.strptime(date, pattern).replace(tzinfo=timezone.utc)
            break
        except ValueError:
            continue
    if when is None:
        return ""
    fmt, out, i = fmt.strip(), [], 0
    while i < len(fmt):
        ch = fmt[i]
        quoted = _QUOTED.match(fmt, i) if ch == '"' else None
        if quoted:
            out.append(quoted.group(1))
            i = quoted.end()
            continue
        if ch == "\\" and i + 1 < len(fmt):
            out.append(fmt[i + 1])
            i += 2
            continue
        if ch == "x" and i + 1 < len(fmt):  # MediaWiki's x-codes
            i += 1
            ch = fmt[i]
            if ch in "nN":  # "raw number" modifiers: no effect on Western digits
                i += 1
                continue
            ch = "F" if ch == "g" else ch  # xg: genitive month name, as F in English
        code = _PHP_CODES.get(ch)
        out.append(code(when) if code else ch)
        i += 1
    return "".join(out)
