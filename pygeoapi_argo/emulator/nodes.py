"""Argo's names for nodes and pods, computed exactly as the workflow controller does.

Clients (the Argo UI, ``argo logs``, our plugin) find pods and nodes by these names, so they
must match a real cluster byte for byte: node ids are ``<workflow>-<fnv32a(node name)>`` and
v2 pod names ``<workflow>-<template>-<fnv32a(node name)>`` with Argo's prefix truncation.
"""

from __future__ import annotations

import json
import re

_MAX_K8S_NAME = 253
_HASH_LENGTH = 10
_MAX_PREFIX = _MAX_K8S_NAME - _HASH_LENGTH
_STEPS_OR_DAG_SEPARATOR = re.compile(r"^(\[\d+\])?\.")


def fnv32a(text: str) -> int:
    """FNV-1a, 32 bit: Go's ``hash/fnv.New32a`` (FNV-1 gives other names)."""
    value = 0x811C9DC5
    for byte in text.encode():
        value ^= byte
        value = (value * 0x01000193) & 0xFFFFFFFF
    return value


def node_id(workflow: str, node_name: str) -> str:
    """``wf.NodeID``: the root node's id is the workflow name itself."""
    if node_name == workflow:
        return workflow
    return f"{workflow}-{fnv32a(node_name)}"


def pod_name(workflow: str, node_name: str, template: str) -> str:
    """``util.GeneratePodName`` in the v2 format (Argo's default since 3.2)."""
    if node_name == workflow:
        return workflow
    prefix = f"{workflow}-{template}" if template else workflow
    if len(prefix) > _MAX_PREFIX - 1:
        prefix = prefix[: _MAX_PREFIX - 1]
    return f"{prefix}-{fnv32a(node_name)}"


def display_name(node_name: str, boundary_name: str | None) -> str:
    """``initializeNode``: the name relative to the boundary node, without ``[i].``."""
    if boundary_name is None:
        return node_name
    relative = node_name.removeprefix(boundary_name)
    return _STEPS_OR_DAG_SEPARATOR.sub("", relative, count=1)


def item_node_name(name: str, index: int, item: object) -> str:
    """``generateNodeName`` for withItems/withParam: ``step(0:value)``; maps as sorted ``k:v`` pairs."""
    if isinstance(item, dict):
        desc = ",".join(sorted(f"{k}:{go_format(v)}" for k, v in item.items()))
    elif isinstance(item, list):
        desc = json.dumps(item, separators=(",", ":"))
    else:
        desc = go_format(item)
    return f"{name}({index}:{desc})"


def go_format(value: object) -> str:
    """Go's ``%v`` for JSON scalars, which Argo uses for item values."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)
