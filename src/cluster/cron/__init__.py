"""Cron expressions -> fire times (epoch ms), fast, in the job's own IANA time zone.

Why our own evaluator and not croniter at run time: measured on this 2-core machine,
croniter 7 costs 100-190 us to parse an expression and 40-180 us per next time, while a
worker must load 100k jobs in <= 10 s and keep up with ~1000 fires/s. Here a field is one
integer bit mask, a next time is a handful of bit operations (a few us) and parsed fields
and expressions are cached. croniter remains the oracle of the property tests.

One idea per private module, everything public re-exported here (import from
`cluster.cron`, never from its parts):
  _fields    the grammar of one field -> a bit mask (and the day-field extras)
  _parse     whole expressions, macros and `@every` -> a cached CronSchedule
  _schedule  the bounded next-time search on the wall clock, and its DST rules
  _zones     loading IANA zones (never the machine's) and offset arithmetic
  _describe  a schedule in plain words, read from the parsed fields (the API's `describe`)
  _errors    the error classes

Errors:
    ValueError
     └── CronError          invalid expression; says what is wrong and in which field
          └── TimeZoneError unknown or forbidden time-zone name
"""

from ._describe import describe, describe_schedule
from ._errors import CronError, TimeZoneError
from ._parse import MAX_EVERY_MS, MAX_EXPR_CHARS, MIN_EVERY_MS, parse_schedule  # noqa: F401
from ._schedule import CronSchedule
from ._zones import load_zone

__all__ = ["CronError", "CronSchedule", "TimeZoneError", "describe", "describe_schedule",
           "load_zone", "parse_schedule"]
