"""The one validation helper: declare fields once, check a parameter dict against them.

Every error is an :class:`InvalidInput` whose message starts with the field name, so a caller
always learns which field to fix.
"""

import re
from collections.abc import Collection
from typing import Any

from engine.errors import InvalidInput

_MISSING = object()
INT64 = 2**63

# Character sets shared by several route groups (OpenC3's accepted sets).
WORD = r"[A-Za-z0-9_-]+"
ALNUM = r"[A-Za-z0-9]+"
DIGITS = r"[0-9]+"
NODES = r"[A-Za-z0-9.,_-]+"
VARNODES = r"[A-Za-z0-9.,_${}-]+"
NO_CONTROL = r"[^\x00-\x08\x0b-\x1f\x7f]*"
ONE_LINE = r"[^\x00-\x1f\x7f]*"


class Field:
    """One parameter: its type, whether it is required, its allowed values and size."""

    def __init__(
        self,
        kind: type = str,
        *,
        required: bool = False,
        default: Any = _MISSING,
        pattern: str | re.Pattern[str] | None = ONE_LINE,
        choices: Collection[str] | None = None,
        max_len: int = 200,
        minimum: int | None = None,
        maximum: int | None = None,
        allow_empty: bool = True,
        truthy: bool = False,
        booleans: bool = False,
    ) -> None:
        self.kind = kind
        self.required = required
        self.default = default
        self.pattern = re.compile(pattern) if isinstance(pattern, str) else pattern
        self.choices = choices
        self.max_len = max_len
        self.minimum = minimum
        self.maximum = maximum
        self.allow_empty = allow_empty
        # bool: any other scalar counts as true, as OpenC3 (Perl) reads a flag.
        self.truthy = truthy
        # int: JSON true/false and the strings "true"/"false" read as 1/0.
        self.booleans = booleans

    def clean(self, name: str, value: Any) -> Any:
        """Return the checked value of ``name`` or raise :class:`InvalidInput`."""
        # OpenC3 clients send null, or "" for a number, list or object, to mean "not set".
        unset = value == "" and (not self.allow_empty or self.kind in (int, list, dict))
        if value is None or value is _MISSING or unset:
            if self.required:
                raise InvalidInput(f"{name}: is required")
            return None if self.default is _MISSING else self.default
        if self.kind is str:
            return self._text(name, value)
        if self.kind is int:
            return self._int(name, value)
        if self.kind is bool:
            return self._bool(name, value)
        if self.kind is list:
            if not isinstance(value, list):
                raise InvalidInput(f"{name}: must be a list")
            return value
        if self.kind is dict:
            if not isinstance(value, dict):
                raise InvalidInput(f"{name}: must be an object")
            return value
        return value  # kind=object: any JSON value

    def _text(self, name: str, value: Any) -> str:
        if isinstance(value, bool) or not isinstance(value, (str, int, float)):
            raise InvalidInput(f"{name}: must be a string")
        value = str(value)
        if len(value) > self.max_len:
            raise InvalidInput(f"{name}: longer than {self.max_len} characters")
        if self.choices is not None and value not in self.choices:
            raise InvalidInput(f"{name}: must be one of {', '.join(self.choices)}")
        if value and self.pattern is not None and not self.pattern.fullmatch(value):
            raise InvalidInput(f"{name}: must match {self.pattern.pattern}")
        if not value and not self.allow_empty:
            raise InvalidInput(f"{name}: must not be empty")
        return value

    def _int(self, name: str, value: Any) -> int:
        if self.booleans and (isinstance(value, bool) or value in ("true", "false")):
            value = int(value in (True, "true"))
        if isinstance(value, bool):
            raise InvalidInput(f"{name}: must be an integer")
        if isinstance(value, str) and re.fullmatch(r"-?[0-9]{1,18}", value.strip()):
            value = int(value)
        if not isinstance(value, int):
            raise InvalidInput(f"{name}: must be an integer")
        if not -INT64 <= value < INT64:  # no database column holds it
            raise InvalidInput(f"{name}: must be between {-INT64} and {INT64 - 1}")
        if self.minimum is not None and value < self.minimum:
            raise InvalidInput(f"{name}: must be at least {self.minimum}")
        if self.maximum is not None and value > self.maximum:
            raise InvalidInput(f"{name}: must be at most {self.maximum}")
        return value

    def _bool(self, name: str, value: Any) -> bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, int):
            return value != 0
        if isinstance(value, str) and value.lower() in (
            "1",
            "true",
            "yes",
            "on",
            "0",
            "false",
            "no",
            "off",
            "",
        ):
            return value.lower() in ("1", "true", "yes", "on")
        if self.truthy and isinstance(value, (str, int, float)):
            return True
        raise InvalidInput(f"{name}: must be true or false")


def check(params: Any, spec: dict[str, Field], prefix: str = "") -> dict[str, Any]:
    """Check ``params`` against ``spec`` (name -> Field); return the cleaned values.

    ``prefix`` is put before every message, e.g. ``"step 2: "``.
    """
    if not isinstance(params, dict):
        raise InvalidInput(f"{prefix.rstrip(': ') or 'body'}: must be an object")
    cleaned: dict[str, Any] = {}
    for name, field in spec.items():
        try:
            cleaned[name] = field.clean(name, params.get(name, _MISSING))
        except InvalidInput as e:
            raise InvalidInput(prefix + e.info) from None
    return cleaned


def one(name: str, value: Any, field: Field) -> Any:
    """Check a single value against ``field``."""
    return field.clean(name, value)
