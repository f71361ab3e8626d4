"""A spec's file read as YAML, hardened, and the command line's `key=value` overrides applied to it: what
spec.load checks next. A spec is input: a file past a page, a pipe, an alias bomb, a key given twice or
YAML 1.1's text-that-looks-like-a-number each get one SpecError (spec.py adds the file's name)."""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from .errors import SpecError, first_line
from .files import NotRegular, open_regular
from .schema import at, shown

MAX_SPEC_BYTES = 1 << 20  # a spec is a page of YAML; more is not a spec
MAX_ALIASES = 100  # YAML aliases (*name) a spec may use: enough for sharing
MAX_NODES = 100_000  # values in a spec once its aliases are expanded: an alias bomb has billions


def _expanded_size(node, memo: dict) -> int:
    """How many values `node` stands for with every alias written out (each shared node counted once per use)."""
    if id(node) not in memo:
        memo[id(node)] = 0  # a node that holds itself (a recursive alias) counts once
        children = [n for pair in node.value for n in pair] if isinstance(node, yaml.MappingNode) else \
            node.value if isinstance(node, yaml.SequenceNode) else []
        memo[id(node)] = 1 + sum(_expanded_size(child, memo) for child in children)
    return memo[id(node)]


class _SpecLoader(yaml.SafeLoader):
    """safe_load that refuses a key given twice in one mapping, a flood of aliases, and a document whose
    aliases expand to more values than any spec holds."""

    aliases = 0

    def compose_document(self):
        node = super().compose_document()
        if node is not None and _expanded_size(node, {}) > MAX_NODES:
            raise yaml.YAMLError(f"its aliases expand to more than {MAX_NODES:,} values; write the values out")
        return node

    def compose_node(self, parent, index):
        if self.check_event(yaml.AliasEvent):
            self.aliases += 1
            if self.aliases > MAX_ALIASES:
                raise yaml.YAMLError(f"more than {MAX_ALIASES} aliases (*name); write the values out")
        return super().compose_node(parent, index)

    def construct_mapping(self, node, deep=False):
        seen = set()
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":  # `<<: *base`: merged below, not a key of its own
                continue
            key = self.construct_object(key_node, deep=True)
            try:
                duplicate = key in seen
            except TypeError:  # an unhashable key: SafeLoader says so itself
                break
            if duplicate:
                raise yaml.constructor.ConstructorError(None, None, f"the key {shown(key)} is given twice", key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep)


# YAML 1.1 (PyYAML) reads 1e9 and 1.0e9 as text: its floats need a dot and a signed exponent. A spec reads
# them as YAML 1.2 and every other language does, as numbers.
_SpecLoader.add_implicit_resolver("tag:yaml.org,2002:float", re.compile(r"^[-+]?[0-9][0-9_]*(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
                                  list("-+0123456789"))
# YAML 1.1 reads 10:00 as the base-60 number 600 (epochs=10:00 would train 600 epochs); YAML 1.2 and a reader of
# the spec, as text, which the schema then refuses where it wants a number. Ahead of PyYAML's own number patterns.
_CLOCK_TIME = ("tag:yaml.org,2002:str", re.compile(r"^[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+(?:\.[0-9_]*)?$"))
_SpecLoader.yaml_implicit_resolvers = {first: [_CLOCK_TIME, *resolvers] if first in "-+0123456789" else resolvers
                                       for first, resolvers in _SpecLoader.yaml_implicit_resolvers.items()}


def read_text(path: Path, what: str, limit: int = MAX_SPEC_BYTES) -> str:
    """A small text file, read only if it is a regular file (never a FIFO or a device, which could block
    or never end) of at most `limit` bytes, as UTF-8: else one clear SpecError (the caller names the file)."""
    try:
        f, info = open_regular(path)
    except FileNotFoundError:
        raise SpecError(f"no such file; give the path of a {what}, e.g. search_spaces/quickstart.yaml") from None
    except NotRegular as e:
        kind = e.kind if e.kind == "a directory" else "not a regular file (a pipe or a device)"
        raise SpecError(f"is {kind}; give a YAML file") from None
    except OSError as e:  # a symlink loop, a name too long, a path through a file
        raise SpecError(f"cannot read the {what} ({e.strerror or type(e).__name__}); give a readable YAML file") from None
    try:
        with f:
            if info.st_size > limit:
                raise SpecError(f"{info.st_size:,} bytes is too large for a {what} (at most {limit:,}); give the spec's YAML file")
            data = f.read(limit + 1)
        if len(data) > limit:  # it grew since stat
            raise SpecError(f"more than {limit:,} bytes is too large for a {what}; give the spec's YAML file")
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise SpecError(f"is not UTF-8 text (byte {e.start}); save the {what} as UTF-8") from None
    except OSError as e:
        raise SpecError(f"cannot read the {what} ({e.strerror or type(e).__name__}); give a readable YAML file") from None


def read_yaml(text: str) -> Any:
    """A spec's text as YAML, read by _SpecLoader: else one SpecError that gives the line."""
    try:
        return yaml.load(text, Loader=_SpecLoader)  # noqa: S506 - a SafeLoader
    except RecursionError:
        raise SpecError("nested too deeply to be a spec; fix the YAML") from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"line {mark.line + 1}: " if mark is not None else ""
        problem = getattr(e, "problem", None)[:200] if getattr(e, "problem", None) else first_line(e)
        raise SpecError(f"{where}not valid YAML ({problem}); fix the syntax there") from None


def override(raw: Any, assignments: list[str]) -> Any:
    """The spec's YAML with command-line overrides applied: each `key=value`, a dotted key for a nested
    one (`batch.labelled=50`, `search.alpha=[1, 10]`), the value read as YAML. What results is checked
    exactly as a file would be."""
    if not assignments:
        return raw
    if not isinstance(raw, dict):
        raise SpecError("a spec must be a mapping of keys to values before overrides apply")
    raw = dict(raw)
    given = set()
    for assignment in assignments:
        if not isinstance(assignment, str):  # run(spec, ["epochs=20"]) from Python
            raise SpecError(f"expected key=value as text, got {shown(assignment)}; give each override as its own "
                            "argument, e.g. run(spec, 'epochs=20', 'seeds=[0, 1]')")
        key, equals, text = assignment.partition("=")
        if not equals or not key or any(not part for part in key.split(".")):
            raise SpecError("expected key=value, e.g. epochs=20 or batch.labelled=50", f"override {shown(assignment)}")
        if key in given:  # as a file's duplicate key is refused: which of the two was meant is not for sweeper to guess
            raise SpecError("given twice among the overrides; give it once", f"override {key}")
        given.add(key)
        with at(f"override {key}"):
            _assign(raw, key.split("."), _override_value(text))
    return raw


def _override_value(text: str) -> Any:
    try:
        return yaml.load(text, Loader=_SpecLoader) if text else ""  # noqa: S506 - a SafeLoader
    except RecursionError:
        raise SpecError("the value is nested too deeply to be a spec's") from None
    except yaml.YAMLError as e:
        raise SpecError(f"the value {shown(text)} is not valid YAML ({first_line(e, 80)})") from None


def _assign(raw: dict, path: list[str], value: Any) -> None:
    """raw[path[0]][path[1]]... = value, copying each mapping on the way (the file's stays as read)."""
    *parents, last = path
    node = raw
    for depth, part in enumerate(parents):
        child = node.get(part, {})
        if child is None:
            child = {}
        if not isinstance(child, dict):
            where = ".".join(parents[: depth + 1])
            raise SpecError(f"{where} is not a mapping here; set it whole ({where}=...)")
        node[part] = child = dict(child)
        node = child
    node[last] = value
