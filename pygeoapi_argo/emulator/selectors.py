"""List filters and response projection as the Argo Server applies them.

- ``LabelSelector``: the full Kubernetes label selector grammar (``=``, ``==``, ``!=``, ``in``,
  ``notin``, ``key``, ``!key``, ``<``, ``>``), because clients select jobs by label.
- ``WorkflowFieldSelector``: the small subset Argo's workflow list accepts (Argo's
  ``BuildListOptions``); anything else is refused, as Argo refuses it.
- ``ObjectFieldSelector``: Kubernetes' own field selector for custom resources (templates).
- ``Fields``: Argo's ``fields`` query parameter (``util/fields``), including its quirks: matching is
  by string prefix and a leading ``-`` turns the list into exclusions.

All raise ``SelectorError`` with the message the server returns as a 400.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

_NAME = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_SPECIAL = "!=(),<>"


class SelectorError(ValueError):
    """A selector or ``fields`` value the Argo Server would reject with InvalidArgument."""


def label_key_error(key: str) -> str | None:
    """Why ``key`` is not a Kubernetes qualified name, or None when it is one."""
    prefix, _, name = key.rpartition("/")
    if "/" in key and (not prefix or len(prefix) > 253 or not _DNS_SUBDOMAIN.match(prefix)):
        return f"prefix part of {key!r} must be a DNS-1123 subdomain"
    if not name or len(name) > 63 or not _NAME.match(name):
        return (f"name part of {key!r} must consist of alphanumeric characters, '-', '_' or '.', "
                "must start and end with an alphanumeric character and be at most 63 characters")
    return None


def label_value_error(value: str) -> str | None:
    """Why ``value`` is not a valid label value, or None when it is one."""
    if value and (len(value) > 63 or not _NAME.match(value)):
        return (f"a valid label value {value!r} must be 63 characters or less and consist of alphanumeric "
                "characters, '-', '_' or '.', starting and ending with an alphanumeric character")
    return None


def _tokens(text: str) -> list[str]:
    """Kubernetes' selector lexer: operators, parentheses, commas and identifiers."""
    out: list[str] = []
    i = 0
    while i < len(text):
        ch = text[i]
        if ch.isspace():
            i += 1
        elif text[i:i + 2] in ("!=", "=="):
            out.append(text[i:i + 2])
            i += 2
        elif ch in _SPECIAL:
            out.append(ch)
            i += 1
        else:
            j = i
            while j < len(text) and not text[j].isspace() and text[j] not in _SPECIAL:
                j += 1
            out.append(text[i:j])
            i = j
    return out


def _is_identifier(token: str | None) -> bool:
    return token is not None and token not in ("!=", "==") and token not in _SPECIAL


@dataclass(frozen=True)
class Requirement:
    key: str
    operator: str  # exists, !, =, !=, in, notin, <, >
    values: tuple[str, ...] = ()

    def matches(self, labels: dict[str, str]) -> bool:
        present = self.key in labels
        value = labels.get(self.key)
        match self.operator:
            case "exists":
                return present
            case "!":
                return not present
            case "=" | "in":
                return present and value in self.values
            case "!=" | "notin":
                return not present or value not in self.values
            case _:  # "<" or ">": integer comparison; a non-integer label never matches
                try:
                    number = int(value) if value is not None else None
                except ValueError:
                    return False
                if number is None:
                    return False
                limit = int(self.values[0])
                return number < limit if self.operator == "<" else number > limit


@dataclass(frozen=True)
class LabelSelector:
    requirements: tuple[Requirement, ...] = ()

    @classmethod
    def parse(cls, text: str | None) -> LabelSelector:
        """Parse Kubernetes label selector syntax; an empty selector matches everything."""
        tokens = _tokens(text or "")
        reqs: list[Requirement] = []
        pos = 0

        def peek() -> str | None:
            return tokens[pos] if pos < len(tokens) else None

        def take() -> str | None:
            nonlocal pos
            token = peek()
            pos += 1
            return token

        def fail(found: str | None, expected: str) -> SelectorError:
            shown = "end of string" if found is None else found
            return SelectorError(f"unable to parse requirement: found '{shown}', expected: {expected}")

        def key_token() -> str:
            key = take()
            if not _is_identifier(key):
                raise fail(key, "identifier")
            assert key is not None
            if error := label_key_error(key):
                raise SelectorError(f"unable to parse requirement: invalid label key {key!r}: {error}")
            return key

        def value_token(allow_empty: bool) -> str:
            if allow_empty and peek() in (None, ",", ")"):
                return ""
            value = take()
            if not _is_identifier(value):
                raise fail(value, "identifier")
            assert value is not None
            if error := label_value_error(value):
                raise SelectorError(f"unable to parse requirement: {error}")
            return value

        while tokens:
            if peek() == "!":
                take()
                reqs.append(Requirement(key_token(), "!"))
            else:
                key = key_token()
                op = peek()
                if op in (None, ","):
                    reqs.append(Requirement(key, "exists"))
                elif op in ("=", "==", "!="):
                    take()
                    reqs.append(Requirement(key, "!=" if op == "!=" else "=", (value_token(True),)))
                elif op in ("in", "notin"):
                    take()
                    if take() != "(":
                        raise fail(tokens[pos - 1] if pos - 1 < len(tokens) else None, "'('")
                    values = [value_token(True)]
                    while peek() == ",":
                        take()
                        values.append(value_token(True))
                    if (closing := take()) != ")":
                        raise fail(closing, "')'")
                    reqs.append(Requirement(key, op, tuple(values)))
                elif op in ("<", ">"):
                    take()
                    number = value_token(False)
                    if not number.lstrip("-").isdigit():
                        raise SelectorError(
                            f"unable to parse requirement: for '{op}' operator, the value must be an integer")
                    reqs.append(Requirement(key, op, (number,)))
                else:
                    raise fail(op, "'=', '!=', '==', 'in', 'notin', '<', '>', ',' or 'end of string'")
            separator = take()
            if separator is None:
                break
            if separator != ",":
                raise fail(separator, "',' or 'end of string'")
            if peek() is None:
                raise fail(None, "identifier")
        return cls(tuple(reqs))

    def matches(self, labels: dict[str, str] | None) -> bool:
        return all(req.matches(labels or {}) for req in self.requirements)


def _rfc3339(text: str) -> datetime:
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise SelectorError(f'parsing time "{text}" as RFC 3339: invalid timestamp') from None


@dataclass
class WorkflowFieldSelector:
    """What Argo's ``BuildListOptions`` reads from ``listOptions.fieldSelector`` for workflow lists."""

    namespace: str
    name: str = ""
    name_filter: str = ""  # Exact (default), Prefix, Contains, NotEquals: the nameFilter query parameter
    started_after: datetime | None = None
    started_before: datetime | None = None
    show_remaining_item_count: bool = False

    @classmethod
    def parse(cls, text: str | None, namespace: str, name_filter: str = "") -> WorkflowFieldSelector:
        sel = cls(namespace=namespace, name_filter=name_filter)
        for part in (text or "").split(","):
            if not part:
                continue
            if part.startswith("metadata.namespace="):
                value = part.removeprefix("metadata.namespace=")
                if sel.namespace and value != sel.namespace:
                    raise SelectorError(
                        f"'namespace' query param (\"{sel.namespace}\") and fieldselector "
                        f"'metadata.namespace' (\"{value}\") are both specified and contradict each other")
                sel.namespace = value
            elif part.startswith("metadata.name!="):
                sel.name, sel.name_filter = part.removeprefix("metadata.name!="), "NotEquals"
            elif part.startswith("metadata.name=="):
                sel.name = part.removeprefix("metadata.name==")
            elif part.startswith("metadata.name="):
                sel.name = part.removeprefix("metadata.name=")
            elif part.startswith("spec.startedAt>"):
                sel.started_after = _rfc3339(part.removeprefix("spec.startedAt>"))
            elif part.startswith("spec.startedAt<"):
                sel.started_before = _rfc3339(part.removeprefix("spec.startedAt<"))
            elif part.startswith("ext.showRemainingItemCount"):
                flag = part.removeprefix("ext.showRemainingItemCount=").lower()
                if flag not in ("true", "false", "1", "0", "t", "f"):
                    raise SelectorError(f'strconv.ParseBool: parsing "{flag}": invalid syntax')
                sel.show_remaining_item_count = flag in ("true", "1", "t")
            else:
                raise SelectorError(f"unsupported requirement {part}")
        if sel.name_filter not in ("", "Exact", "Prefix", "Contains", "NotEquals"):
            raise SelectorError(f"unsupported nameFilter {sel.name_filter}")
        return sel

    def matches(self, workflow: dict) -> bool:
        meta = workflow.get("metadata", {})
        name = meta.get("name", "")
        if self.name:
            ok = {
                "": name == self.name, "Exact": name == self.name, "NotEquals": name != self.name,
                "Prefix": name.startswith(self.name), "Contains": self.name in name,
            }[self.name_filter]
            if not ok:
                return False
        started = workflow.get("status", {}).get("startedAt")
        if self.started_after or self.started_before:
            if not started:
                return False
            at = _rfc3339(started)
            if self.started_after and not at > self.started_after:
                return False
            if self.started_before and not at < self.started_before:
                return False
        return True


@dataclass
class ObjectFieldSelector:
    """Kubernetes field selectors on custom resources: only metadata.name and metadata.namespace."""

    tests: list[Callable[[dict], bool]] = field(default_factory=list)

    @classmethod
    def parse(cls, text: str | None) -> ObjectFieldSelector:
        sel = cls()
        for part in (text or "").split(","):
            if not part:
                continue
            match = re.fullmatch(r"([^!=]+)(!=|==|=)(.*)", part)
            if not match:
                raise SelectorError(f"invalid selector: '{part}'; can't understand '{part}'")
            path, op, value = match.groups()
            if path not in ("metadata.name", "metadata.namespace"):
                raise SelectorError(f'field label not supported: {path}')
            attr = path.removeprefix("metadata.")

            def test(obj: dict, attr: str = attr, op: str = op, value: str = value) -> bool:
                return (obj.get("metadata", {}).get(attr, "") == value) == (op != "!=")

            sel.tests.append(test)
        return sel

    def matches(self, obj: dict) -> bool:
        return all(test(obj) for test in self.tests)


class Fields:
    """Argo's ``fields`` projection, a faithful port of ``util/fields.Cleaner``."""

    def __init__(self, query: str | None) -> None:
        query = query or ""
        self.exclude = query.startswith("-")
        self.fields = set((query[1:] if self.exclude else query).split(",")) if query else set()

    def __bool__(self) -> bool:
        return bool(self.fields)

    def will_exclude(self, path: str) -> bool:
        if not self.fields:
            return False
        matches = any(path.startswith(f) or f.startswith(path) for f in self.fields)
        return self.exclude if matches else not self.exclude

    def clean(self, data: dict) -> dict:
        """Project ``data`` in place (callers pass a copy) and return it."""
        if self.fields:
            self._clean([], data)
        return data

    def _clean(self, path: list[str], item: object) -> None:
        if isinstance(item, dict):
            for key in list(item):
                field_path = ".".join([*path, key])
                path_in = field_path in self.fields
                parent_in = path_in or any(f.startswith(field_path) for f in self.fields)
                if (self.exclude and not path_in) or (not self.exclude and parent_in):
                    if not path_in:
                        self._clean([*path, key], item[key])
                else:
                    del item[key]
        elif isinstance(item, list):
            for element in item:
                self._clean(path, element)
