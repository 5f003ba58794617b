"""Renderers: a Plan as terminal text, as the stable JSON document, or as a pull-request comment.

Flow: `plan` → **render** → the CLI prints the string. Pure: colour is an argument, never
sniffed from the terminal here.
"""

from __future__ import annotations

import json
from typing import Any

from reconciler.core.plan import Action, Blocked, Change, EnvPlan, Plan

FOLD_AFTER = 20
"""Environments with more changes than this are folded in the Markdown comment."""

_RESET = "\033[0m"
_COLOURS = {"+": "\033[32m", "~": "\033[33m", "-": "\033[31m", "!": "\033[35m", "header": "\033[1m"}
_SIGNS = {Action.ADD: "+", Action.REQUEST: "+", Action.CHANGE: "~", Action.REMOVE: "-", Action.CANCEL: "-"}
NO_CHANGES = "No changes. Live matches the desired state."


def _show(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value, sort_keys=True, ensure_ascii=False)


def _plural(count: int, word: str) -> str:
    return f"{count} {word}" if count == 1 else f"{count} {word}s"


def summary_line(plan: Plan) -> str:
    s = plan.summary
    if not any(s.values()):
        return NO_CHANGES
    return (
        f"Plan: {s['add']} to add, {s['change']} to change, {s['remove']} to remove, "
        f"{_plural(s['request'], 'request')}, {_plural(s['cancel'], 'cancel')}, {s['blocked']} blocked."
    )


def _paint(text: str, key: str, color: bool) -> str:
    return f"{_COLOURS[key]}{text}{_RESET}" if color else text


def change_line(change: Change) -> str:
    sign = _SIGNS[change.action]
    if change.action is Action.CHANGE:
        line = f"{sign} {change.path}: {_show(change.before)} → {_show(change.after)}"
    else:
        line = f"{sign} {change.path} {_show(change.value)}"
        if change.action in (Action.REQUEST, Action.CANCEL):
            line += f"  [{change.action.value}]"
    if change.because:
        line += f"  ({change.because})"
    return line


def blocked_line(blocked: Blocked) -> str:
    return f"! {blocked.path} {_show(blocked.value)}: {blocked.why}"


def _env_text(env: EnvPlan, color: bool) -> list[str]:
    revision = f" @ {env.revision[:12]}" if env.revision else ""
    lines = [_paint(f"{env.name}{revision}", "header", color)]
    if not env.changes and not env.blocked:
        lines.append("  no changes")
    for change in env.changes:
        lines.append("  " + _paint(change_line(change), _SIGNS[change.action], color))
    for blocked in env.blocked:
        lines.append("  " + _paint(blocked_line(blocked), "!", color))
    lines += [f"  warning: {w}" for w in env.warnings]
    return lines


def plan_text(plan: Plan, color: bool = False) -> str:
    """The plan for a terminal: per environment a header and one line per change."""
    lines: list[str] = []
    for env in plan.environments:
        lines += [*_env_text(env, color), ""]
    lines.append(summary_line(plan))
    return "\n".join(lines) + "\n"


def plan_json(plan: Plan) -> str:
    """The stable, versioned document of DESIGN §3 (schema `schemas/plan.schema.json`)."""
    return json.dumps(plan.data, indent=2, ensure_ascii=False) + "\n"


def _cell(value: Any) -> str:
    if value is None:
        return ""
    text = _show(value).replace("|", "\\|").replace("\n", " ")
    return f"`{text}`"


def _row(change: Change) -> str:
    before, after = {
        Action.ADD: (None, change.value),
        Action.REQUEST: (None, change.value),
        Action.CHANGE: (change.before, change.after),
        Action.REMOVE: (change.value, None),
        Action.CANCEL: (change.value, None),
    }[change.action]
    why = (change.because or "").replace("|", "\\|")
    return f"| {change.action.value} | `{change.path}` | {_cell(before)} | {_cell(after)} | {why} |"


def _env_markdown(env: EnvPlan) -> list[str]:
    body: list[str] = []
    if env.changes:
        body += ["| action | setting | from | to | why |", "| --- | --- | --- | --- | --- |"]
        body += [_row(c) for c in env.changes]
    elif not env.blocked:
        body.append("No changes.")
    if env.blocked:
        body += ["", "**Blocked**", ""]
        body += [f"- `{b.path}` {_cell(b.value)}: {b.why}" for b in env.blocked]
    if env.warnings:
        body += ["", "**Warnings**", ""]
        body += [f"- {w}" for w in env.warnings]
    title = f"### {env.name}"
    if len(env.changes) > FOLD_AFTER:
        summary = f"<summary>{env.name}: {len(env.changes)} changes</summary>"
        return [title, "", "<details>", summary, "", *body, "", "</details>"]
    return [title, "", *body]


def plan_markdown(plan: Plan) -> str:
    """The plan as a pull-request comment: a summary line, then a table per environment."""
    lines = [f"**{summary_line(plan)}**", "", f"Planned for `{plan.at.isoformat()}`."]
    for env in plan.environments:
        lines += ["", *_env_markdown(env)]
    return "\n".join(lines) + "\n"
