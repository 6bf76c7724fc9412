"""Argo's ``{{...}}`` substitution and the small expression languages of ``when`` and ``depends``.

Argo substitutes with fasttemplate over the JSON of a template or step, leaving unknown tags for
a later pass; a pod template that still holds a tag when it is about to run is an error (Argo's
validator refuses it at submission). ``when`` is govaluate with bare words taken as strings;
``depends`` is boolean logic over ``task.Result`` terms.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

_TAG = re.compile(r"\{\{\s*([^{}]*?)\s*\}\}")


class ExpressionError(ValueError):
    """A ``when`` or ``depends`` expression that cannot be evaluated."""


def substitute(value: Any, scope: Mapping[str, str]) -> Any:
    """Replace every known ``{{name}}`` in strings of a JSON value; unknown tags stay."""
    if isinstance(value, str):
        return _TAG.sub(lambda m: scope.get(m.group(1).strip(), m.group(0)), value)
    if isinstance(value, list):
        return [substitute(v, scope) for v in value]
    if isinstance(value, dict):
        return {k: substitute(v, scope) for k, v in value.items()}
    return value


def unresolved(value: Any) -> list[str]:
    """The tags left in a JSON value after substitution."""
    return [m.group(0) for m in _TAG.finditer(json.dumps(value))]


# --- when: govaluate subset -------------------------------------------------------------------

_TOKEN = re.compile(
    r"""\s*(?:
        (?P<num>-?\d+(?:\.\d+)?(?![\w.-]))
      | (?P<str>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')
      | (?P<op>==|!=|<=|>=|=~|!~|&&|\|\||[<>!()])
      | (?P<word>[^\s()<>=!&|"']+)
    )""",
    re.VERBOSE,
)


def _tokens(text: str) -> list[tuple[str, Any]]:
    tokens: list[tuple[str, Any]] = []
    pos = 0
    text = text.strip()
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if not match or match.end() == pos:
            raise ExpressionError(f"Invalid token at position {pos} in '{text}'")
        pos = match.end()
        kind = match.lastgroup
        raw = match.group(kind)
        if kind == "num":
            tokens.append(("val", float(raw)))
        elif kind == "str":
            tokens.append(("val", raw[1:-1].encode().decode("unicode_escape")))
        elif kind == "op":
            tokens.append(("op", raw))
        elif raw in ("true", "false"):
            tokens.append(("val", raw == "true"))
        else:
            tokens.append(("val", raw))  # govaluate variables are taken as strings by Argo
    return tokens


class _Parser:
    """Recursive descent: or > and > not > comparison > primary."""

    def __init__(self, tokens: list[tuple[str, Any]]) -> None:
        self.tokens = tokens
        self.pos = 0

    def peek(self) -> tuple[str, Any] | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def take(self, op: str) -> bool:
        tok = self.peek()
        if tok == ("op", op):
            self.pos += 1
            return True
        return False

    def parse(self) -> Any:
        value = self.or_()
        if self.peek() is not None:
            raise ExpressionError(f"unexpected {self.peek()[1]!r}")
        return value

    def or_(self) -> Any:
        left = self.and_()
        while self.take("||"):
            right = self.and_()
            left = _bool(left) or _bool(right)
        return left

    def and_(self) -> Any:
        left = self.not_()
        while self.take("&&"):
            right = self.not_()
            left = _bool(left) and _bool(right)
        return left

    def not_(self) -> Any:
        if self.take("!"):
            return not _bool(self.not_())
        return self.compare()

    def compare(self) -> Any:
        left = self.primary()
        tok = self.peek()
        if tok and tok[0] == "op" and tok[1] in ("==", "!=", "<", ">", "<=", ">=", "=~", "!~"):
            self.pos += 1
            return _compare(tok[1], left, self.primary())
        return left

    def primary(self) -> Any:
        if self.take("("):
            value = self.or_()
            if not self.take(")"):
                raise ExpressionError("missing ')'")
            return value
        tok = self.peek()
        if tok is None or tok[0] != "val":
            raise ExpressionError(f"unexpected {'end' if tok is None else repr(tok[1])}")
        self.pos += 1
        return tok[1]


def _bool(value: Any) -> bool:
    if not isinstance(value, bool):
        raise ExpressionError(f"value '{value}' cannot be used with a logical operator")
    return value


def _compare(op: str, left: Any, right: Any) -> bool:
    if op == "==":
        return left == right
    if op == "!=":
        return left != right
    if op in ("=~", "!~"):
        found = re.search(str(right), str(left)) is not None
        return found if op == "=~" else not found
    numbers = all(isinstance(v, float) for v in (left, right))
    strings = all(isinstance(v, str) for v in (left, right))
    if not (numbers or strings):
        raise ExpressionError(f"cannot compare '{left}' {op} '{right}'")
    return {"<": left < right, ">": left > right, "<=": left <= right, ">=": left >= right}[op]


def evaluate_when(when: str) -> bool:
    """``shouldExecute``: an empty ``when`` runs; otherwise it must evaluate to a boolean."""
    if not when.strip():
        return True
    try:
        result = _Parser(_tokens(when)).parse()
    except ExpressionError as exc:
        raise ExpressionError(f"Invalid 'when' expression '{when}': {exc}") from None
    if not isinstance(result, bool):
        raise ExpressionError(f"Expected boolean evaluation for '{when}'. Got {result}")
    return result


# --- depends ----------------------------------------------------------------------------------

_DEPENDS_TERM = re.compile(r"[A-Za-z0-9_-]+(?:\.[A-Za-z]+)?")
_RESULTS = {"Succeeded", "Failed", "Errored", "Skipped", "Omitted", "Daemoned", "AnySucceeded", "AllFailed"}


def depends_tasks(depends: str) -> list[str]:
    """The task names a ``depends`` expression mentions, in order of first mention."""
    names: list[str] = []
    for term in _DEPENDS_TERM.findall(depends):
        name = term.split(".", 1)[0]
        if name not in names:
            names.append(name)
    return names


def evaluate_depends(depends: str, results: Mapping[str, Mapping[str, bool]]) -> bool:
    """Evaluate ``A && (B.Failed || C.Succeeded)``; a bare task means Succeeded, Skipped or Daemoned."""

    def term(match: re.Match[str]) -> str:
        name, _, result = match.group(0).partition(".")
        if result and result not in _RESULTS:
            raise ExpressionError(f"unknown task result '{result}' in depends '{depends}'")
        flags = results[name]
        value = flags[result] if result else flags["Succeeded"] or flags["Skipped"] or flags["Daemoned"]
        return "true" if value else "false"

    expression = _DEPENDS_TERM.sub(term, depends)
    result = _Parser(_tokens(expression)).parse()
    return _bool(result)
