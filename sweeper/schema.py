"""What a spec's values and mappings may be: pydantic sections with one-line messages. No torch.

A mapping of a spec file is a `Section`, a frozen pydantic model: its fields are the mapping's keys (an
alias is a key's name in the file), a field's type says what values it takes (for the JSON Schema that
`sweeper schema` prints), and its validator checks a value with the message a user reads. A problem raises
a SpecError that carries its key named from the top (`resources.cpu`); the file is added where a spec is
read, so a message is one line: "FILE: KEY: what is wrong; what to do".

Why not pydantic's own messages: they come several to a mapping, in pydantic's words; a spec's problem is
reported first-found, in the words of the key it is about ("unknown sampler 'tpee'; allowed: ...").
"""
from __future__ import annotations

import math
from contextlib import contextmanager
from typing import Annotated, Any, ClassVar, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, SkipValidation, ValidationError, field_validator, model_validator

from .errors import SpecError

MISSING = object()  # a required key's default


def shown(value, limit: int = 40) -> str:
    """A value's repr as a message shows it, cut to `limit` characters."""
    try:
        text = repr(value)
    except (ValueError, RecursionError):  # an integer of more digits than Python prints
        text = f"<{type(value).__name__}>"
    return text if len(text) <= limit else text[: limit - 1] + "…"


def shown_key(key) -> str:
    return key[:40] if isinstance(key, str) else shown(key)


# ---------------------------------------------------------------------------- values


def text(value, key=None) -> str:
    if not isinstance(value, str) or not value:
        raise SpecError(f"expected text, got {shown(value)}", key)
    return value


def number(value, key=None) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise SpecError(f"expected a number, got {shown(value)}", key)
    try:
        finite = math.isfinite(value)
    except OverflowError:  # an integer too large for a float
        finite = False
    if not finite:
        raise SpecError(f"expected a finite number, got {shown(value)}", key)
    return value


def integer(value, low: int, high: int | None = None, key=None) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise SpecError(f"expected an integer, got {shown(value)}", key)
    if value < low:
        raise SpecError(f"must be >= {low}, got {shown(value)}", key)
    if high is not None and value > high:
        raise SpecError(f"must be <= {high}, got {shown(value)}", key)
    return value


def boolean(value, key=None) -> bool:
    if not isinstance(value, bool):
        raise SpecError(f"expected true or false, got {shown(value)}", key)
    return value


def choice(value, allowed: tuple[str, ...], what: str, key=None) -> str:
    if not isinstance(value, str) or value not in allowed:
        raise SpecError(f"unknown {what} {shown(value)}; allowed: {', '.join(allowed)}", key)
    return value


def as_list(value) -> list:
    return value if isinstance(value, list) else [value]


# A field's type: the value it holds (`kind`), the check that gives the message (`parse`, which also converts),
# and what the file may write (`written_as`, with bounds or choices): the JSON Schema's, written once beside the
# check. pydantic itself converts nothing (a YAML 1 stays 1, not 1.0): the check has the last word.

def checked(kind, parse, written_as):
    return Annotated[SkipValidation[kind], BeforeValidator(parse, json_schema_input_type=written_as)]


INTEGER_LIMIT = 2**31 - 1  # the most any count of a spec may be: every one fits the results' int64 columns, with room


def Integer(low: int, high: int = INTEGER_LIMIT):  # noqa: N802 - a type
    return checked(int, lambda v: integer(v, low, high), Annotated[int, Field(ge=low, le=high)])


def Choice(allowed: tuple[str, ...], what: str):  # noqa: N802 - a type
    return checked(str, lambda v: choice(v, allowed, what), Literal[allowed])


Boolean = checked(bool, boolean, bool)


# ---------------------------------------------------------------------------- where a problem is


@contextmanager
def _rewritten(change):
    try:
        yield
    except SpecError as e:
        raise change(e) from None


def at(key):
    """SpecErrors raised inside are about something under `key`: their keys are named from there."""
    return _rewritten(lambda e: e.under(key))


def naming(source):
    """SpecErrors raised inside name `source` as their file: the one place a message gets its file."""
    return _rewritten(lambda e: e.within(source))


# ---------------------------------------------------------------------------- mappings


def shape(keys: dict[str, Any]) -> str:
    """What a mapping looks like, from its defaults: `a mapping {bf16: true|false, ...}`."""
    def placeholder(default) -> str:
        if default == "auto":  # step.bf16: a boolean, or auto
            return "true|false|auto"
        return "true|false" if isinstance(default, bool) else "N" if isinstance(default, (int, float)) else "..."

    return "a mapping {" + ", ".join(f"{key}: {placeholder(default)}" for key, default in keys.items()) + "}"


def given(keys: dict[str, Any], raw) -> dict:
    """A mapping as the file gives it (None: empty), its keys checked against `keys` (key: default, MISSING if required)."""
    if raw is None:  # `resources:` with nothing under it
        return {}
    if not isinstance(raw, dict):
        raise SpecError(f"expected {shape(keys)}")
    for key in raw:
        if key not in keys:
            raise SpecError(f"unknown key; allowed keys: {', '.join(keys)}", shown_key(key))
    required = [key for key, default in keys.items() if default is MISSING]
    for key in required:
        if key not in raw:
            raise SpecError(f"missing required key '{key}'; required keys: {', '.join(required)}")
    return raw


class Section(BaseModel):
    """A mapping of a spec file, validated first problem first (see the module's docstring)."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True, arbitrary_types_allowed=True)
    shorthands: ClassVar[tuple[str, ...]] = ()  # names the file may write instead of the mapping (`scheduler: asha`)

    @classmethod
    def keys(cls) -> dict[str, Any]:
        """Each key of the mapping, as the file names it, with its default (MISSING: required)."""
        return {field.alias or name: MISSING if field.is_required() else field.get_default(call_default_factory=True)
                for name, field in cls.model_fields.items() if not field.exclude}

    @classmethod
    def shorthand(cls, raw):
        """What the file may write instead of the mapping (`scheduler: asha`), as the mapping."""
        return raw

    @classmethod
    def __get_pydantic_json_schema__(cls, core_schema, handler):
        schema = handler(core_schema)
        if not cls.shorthands:
            return schema
        return {"anyOf": [{"enum": list(cls.shorthands)}, handler.resolve_ref_schema(schema)]}

    @classmethod
    def parse(cls, raw):
        """The section from the file's value; a problem is a SpecError (also pydantic's own, which the field
        validators leave none of)."""
        try:
            return cls.model_validate(raw)
        except ValidationError as e:
            problem = e.errors()[0]
            raise SpecError(problem["msg"], ".".join(map(str, problem["loc"])) or None) from None

    @model_validator(mode="before")
    @classmethod
    def _mapping(cls, raw):
        return raw if isinstance(raw, cls) else given(cls.keys(), cls.shorthand(raw))

    @field_validator("*", mode="wrap")
    @classmethod
    def _named(cls, value, handler, info):
        field = cls.model_fields[info.field_name]
        if value is None and not field.is_required() and field.default is None:  # `trials: null` says what leaving it out says
            return None
        with at(field.alias or info.field_name):
            return handler(value)
