"""Siebel `searchspec`, read back: the subset ct-sync writes (`siebel_adapter.searchspec`) parsed into a tree,
evaluated against a record, and the bound a field must meet read from it (so the emulator reads an index range
instead of every row). Anything outside the subset is refused.

    spec   := or
    or     := and ("OR" and)*
    and    := term ("AND" term)*
    term   := "(" or ")" | "[" field "]" op value
    op     := = | <> | > | >= | < | <=
    value  := '...' with '' for a quote inside
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sync_worker.core.member import parse_siebel_datetime

_TOKEN = re.compile(r"\s*(?:(\()|(\))|\[([^\]]+)\]|(<>|>=|<=|=|>|<)|'((?:[^']|'')*)'|(AND|OR)\b)", re.IGNORECASE)

Predicate = Callable[[Mapping[str, Any]], bool]


class SearchspecError(ValueError):
    """The searchspec is not in the supported subset."""


@dataclass(frozen=True)
class Comparison:
    field: str
    op: str
    value: str


@dataclass(frozen=True)
class AllOf:
    parts: tuple[Node, ...]


@dataclass(frozen=True)
class AnyOf:
    parts: tuple[Node, ...]


Node = Comparison | AllOf | AnyOf
Bound = tuple[str, str]  # (op, value): "=", ">" or ">=" a value


def parse(spec: str) -> Predicate:
    return predicate(parse_tree(spec))


def parse_tree(spec: str) -> Node:
    tokens = _tokenize(spec)
    node, position = _or(tokens, 0)
    if position != len(tokens):
        raise SearchspecError(f"unexpected {tokens[position][1]!r}")
    return node


def predicate(node: Node) -> Predicate:
    if isinstance(node, Comparison):
        return _comparison(node.field, node.op, node.value)
    parts = [predicate(part) for part in node.parts]
    combine = all if isinstance(node, AllOf) else any
    return lambda record: combine(each(record) for each in parts)


def fields(node: Node) -> list[str]:
    """Every field the spec names, in order of appearance, each once."""
    if isinstance(node, Comparison):
        return [node.field]
    return list(dict.fromkeys(name for part in node.parts for name in fields(part)))


def lower_bound(
    node: Node, field: str, *, normalise: Callable[[str], str | None] = lambda value: value
) -> Bound | None:
    """A bound on `field` that every record matching `node` meets, with values as `normalise` makes them comparable
    (None: it cannot); None when the spec bounds `field` nowhere, or not on every branch of an OR."""
    if isinstance(node, Comparison):
        value = normalise(node.value) if node.field == field and node.op in ("=", ">", ">=") else None
        return None if value is None else (node.op, value)
    bounds = [lower_bound(part, field, normalise=normalise) for part in node.parts]
    if isinstance(node, AllOf):  # any one of them holds: the tightest (an equality, else the highest)
        found = [bound for bound in bounds if bound is not None]
        equal = [bound for bound in found if bound[0] == "="]
        return equal[0] if equal else max(found, key=lambda bound: bound[1], default=None)
    if any(bound is None for bound in bounds):  # an OR with an unbounded branch bounds nothing
        return None
    values = {bound[1] for bound in bounds if bound is not None}
    if len(values) == 1 and all(bound is not None and bound[0] == "=" for bound in bounds):
        return ("=", values.pop())
    return (">=", min(values))  # the loosest branch


def key_after(node: Node, time_field: str, id_field: str) -> tuple[str, str] | None:
    """(moment, row id) when `node` is the keyset condition `after_key` builds, or ANDs it with others: every
    record it matches lies after that key."""
    for part in node.parts if isinstance(node, AllOf) else (node,):
        if not (isinstance(part, AnyOf) and len(part.parts) == 2):
            continue
        later, same = part.parts
        if not (isinstance(later, Comparison) and isinstance(same, AllOf) and len(same.parts) == 2):
            continue
        moment, row = same.parts
        if (
            later == Comparison(time_field, ">", later.value)
            and moment == Comparison(time_field, "=", later.value)
            and isinstance(row, Comparison)
            and row == Comparison(id_field, ">", row.value)
        ):
            return later.value, row.value
    return None


def _tokenize(spec: str) -> list[tuple[str, str]]:
    tokens: list[tuple[str, str]] = []
    position = 0
    spec = spec.rstrip()
    while position < len(spec):
        match = _TOKEN.match(spec, position)
        if match is None:
            raise SearchspecError(f"cannot read the searchspec at character {position}")
        position = match.end()
        opening, closing, field, op, value, word = match.groups()
        if opening:
            tokens.append(("(", "("))
        elif closing:
            tokens.append((")", ")"))
        elif field is not None:
            tokens.append(("field", field))
        elif op:
            tokens.append(("op", op))
        elif value is not None:
            tokens.append(("value", value.replace("''", "'")))
        else:
            tokens.append(("word", word.upper()))
    return tokens


def _or(tokens: list[tuple[str, str]], position: int) -> tuple[Node, int]:
    return _chain(tokens, position, "OR", _and, AnyOf)


def _and(tokens: list[tuple[str, str]], position: int) -> tuple[Node, int]:
    return _chain(tokens, position, "AND", _term, AllOf)


def _chain(
    tokens: list[tuple[str, str]],
    position: int,
    word: str,
    operand: Callable[[list[tuple[str, str]], int], tuple[Node, int]],
    combine: Callable[[tuple[Node, ...]], Node],
) -> tuple[Node, int]:
    """operand (word operand)*, one node of all of them."""
    part, position = operand(tokens, position)
    parts = [part]
    while position < len(tokens) and tokens[position] == ("word", word):
        part, position = operand(tokens, position + 1)
        parts.append(part)
    if len(parts) == 1:
        return parts[0], position
    return combine(tuple(parts)), position


def _term(tokens: list[tuple[str, str]], position: int) -> tuple[Node, int]:
    if position >= len(tokens):
        raise SearchspecError("the searchspec ends too early")
    kind, text = tokens[position]
    if kind == "(":
        inner, position = _or(tokens, position + 1)
        if position >= len(tokens) or tokens[position][0] != ")":
            raise SearchspecError("a parenthesis is not closed")
        return inner, position + 1
    if kind != "field" or position + 2 >= len(tokens):
        raise SearchspecError(f"expected [Field] op 'value', found {text!r}")
    (op_kind, op), (value_kind, value) = tokens[position + 1], tokens[position + 2]
    if op_kind != "op" or value_kind != "value":
        raise SearchspecError("expected [Field] op 'value' (values must be quoted)")
    return Comparison(text, op, value), position + 3


def _comparison(field: str, op: str, value: str) -> Predicate:
    def holds(record: Mapping[str, Any]) -> bool:
        actual = record.get(field)
        if actual is None or actual == "":
            return op == "=" and value == ""
        left: Any = str(actual)
        right: Any = value
        moment = _as_datetime(value)
        if moment is not None and (stored := _as_datetime(str(actual))) is not None:
            left, right = stored, moment
        return bool(
            {
                "=": left == right,
                "<>": left != right,
                ">": left > right,
                ">=": left >= right,
                "<": left < right,
                "<=": left <= right,
            }[op]
        )

    return holds


def _as_datetime(text: str) -> datetime | None:
    parsed = parse_siebel_datetime(text)
    return parsed if isinstance(parsed, datetime) else None
