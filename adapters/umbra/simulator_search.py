"""The simulated Umbra Canopy's task search: `PostSearchTasksQueryModel` filters evaluated.

String filters (`eq`, `startsWith`, `endsWith`, `contains`, `icontains`), enum `in_`, id `eq`/`ne`,
tags `contains`/`all` and date-time comparisons are evaluated; `geometry`, `taskType` and the
UUID filters other than `id` are accepted (validated) but not evaluated.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from adapters.umbra.simulator_models import TaskQuery


def matches(query: TaskQuery, body: dict[str, Any]) -> bool:
    """Whether a task body satisfies every filter of the query."""
    properties = body["properties"]
    for name in ("userOrderId", "taskName", "userId"):
        rule = getattr(query, name)
        value = str(properties.get(name) or "")
        if rule is not None and not _string_matches(rule.model_dump(exclude_none=True), value):
            return False
    if query.status is not None and query.status.in_ is not None and properties["status"] not in query.status.in_:
        return False
    modes = query.imagingMode.in_ if query.imagingMode is not None else None
    if modes is not None and properties["imagingMode"] not in modes:
        return False
    if query.id is not None:
        if query.id.eq is not None and body["id"] != str(query.id.eq):
            return False
        if query.id.ne is not None and body["id"] == str(query.id.ne):
            return False
    if query.tags is not None:
        tags = set(properties.get("tags") or [])
        if query.tags.contains is not None and query.tags.contains not in tags:
            return False
        if query.tags.all is not None and not set(query.tags.all) <= tags:
            return False
    for name in ("createdAt", "updatedAt", "windowStartAt", "windowEndAt"):
        rule = getattr(query, name)
        if rule is not None and not _value_matches(rule.model_dump(exclude_none=True), properties[name]):
            return False
    return True


def _string_matches(rule: dict[str, str], value: str) -> bool:
    checks: dict[str, Callable[[str], bool]] = {
        "eq": lambda v: value == v,
        "startsWith": lambda v: value.startswith(v),
        "endsWith": lambda v: value.endswith(v),
        "contains": lambda v: v in value,
        "icontains": lambda v: v.lower() in value.lower(),
    }
    return all(checks[op](operand) for op, operand in rule.items())


def _value_matches(rule: dict[str, Any], value: str) -> bool:
    moment = datetime.fromisoformat(value.replace("Z", "+00:00"))

    def at(operand: Any) -> datetime:
        return operand if isinstance(operand, datetime) else datetime.fromtimestamp(float(operand), UTC)

    ops = {
        "eq": lambda o: moment == at(o),
        "ne": lambda o: moment != at(o),
        "gt": lambda o: moment > at(o),
        "lt": lambda o: moment < at(o),
        "gte": lambda o: moment >= at(o),
        "lte": lambda o: moment <= at(o),
    }
    return all(ops[op](operand) for op, operand in rule.items())
