"""Renderers: a Plan as terminal text, as the stable JSON document, or as a pull-request comment.

Flow: `plan` → **render** → the CLI prints the string. Pure: colour is an argument, never
sniffed from the terminal here.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

from reconciler.core.plan import Action, Blocked, Change, EnvPlan, Plan
from reconciler.core.words import NO_WORDS, TermNames, Words, path_label, term_label

FOLD_AFTER = 20
"""Environments with more changes than this are folded in the Markdown comment."""
COMMENT_LIMIT = 60_000
"""What the Markdown before CUT_MARK may hold: a GitHub comment holds at most 65,536 characters."""
CUT_MARK = "<!-- reconciler-plan-cut -->"
"""Where the pull-request comment ends; the job summary shows the whole document."""

_RESET = "\033[0m"
_COLOURS = {"+": "\033[32m", "~": "\033[33m", "-": "\033[31m", "!": "\033[35m", "header": "\033[1m"}
_SIGNS = {Action.ADD: "+", Action.REQUEST: "+", Action.CHANGE: "~", Action.REMOVE: "-", Action.CANCEL: "-"}
NO_CHANGES = "No changes. Live matches the desired state."


def _show(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value, sort_keys=True, ensure_ascii=False)


def _value(path: str, value: Any, names: TermNames) -> str:
    """A value in words: a term scope's code with its name, a phase's term too, anything else as it is."""
    term_path = path.endswith(".terms") or (path.startswith("phases.") and path.endswith(".term"))
    if term_path and isinstance(value, str):  # a term scope's code; a phase's own term, as drift names it
        return term_label(value, names)
    if path.startswith("phases.") and isinstance(value, Mapping) and isinstance(value.get("term"), str):
        return _show({**value, "term": term_label(value["term"], names)})
    return _show(value)


def _why(blocked: Blocked, names: TermNames) -> str:
    """Why a change is blocked, the term it speaks of named: `term Fall 2027 (202810) is not yet rolled…`."""
    if not (blocked.path.endswith(".terms") and isinstance(blocked.value, str)):
        return blocked.why
    code = re.escape(blocked.value)
    return re.sub(rf"\bterm {code}\b", lambda _: f"term {term_label(blocked.value, names)}", blocked.why)


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


def change_line(change: Change, names: TermNames | None = None) -> str:
    sign, names = _SIGNS[change.action], names or {}
    if change.action is Action.CHANGE:
        line = (f"{sign} {change.path}: {_value(change.path, change.before, names)} → "
                f"{_value(change.path, change.after, names)}")
    else:
        line = f"{sign} {change.path} {_value(change.path, change.value, names)}"
        if change.action in (Action.REQUEST, Action.CANCEL):
            line += f"  [{change.action.value}]"
    if change.because:
        line += f"  ({change.because})"
    return line


def blocked_line(blocked: Blocked, names: TermNames | None = None) -> str:
    names = names or {}
    return f"! {blocked.path} {_value(blocked.path, blocked.value, names)}: {_why(blocked, names)}"


def _env_text(env: EnvPlan, color: bool, words: Words) -> list[str]:
    revision = f" @ {env.revision[:12]}" if env.revision else ""
    protected = " (protected)" if env.name in words.protected else ""
    lines = [_paint(f"{env.name}{revision}{protected}", "header", color)]
    if not env.changes and not env.blocked:
        lines.append("  no changes")
    names = words.names(env.name)
    for change in env.changes:
        lines.append("  " + _paint(change_line(change, names), _SIGNS[change.action], color))
    for blocked in env.blocked:
        lines.append("  " + _paint(blocked_line(blocked, names), "!", color))
    lines += [f"  warning: {w}" for w in env.warnings]
    return lines


def plan_text(plan: Plan, color: bool = False, words: Words = NO_WORDS) -> str:
    """The plan for a terminal: per environment a header and one line per change, terms by name."""
    lines: list[str] = []
    for env in plan.environments:
        lines += [*_env_text(env, color, words), ""]
    lines.append(summary_line(plan))
    return "\n".join(lines) + "\n"


def plan_json(plan: Plan) -> str:
    """The stable, versioned document of DESIGN §3 (schema `schemas/plan.schema.json`)."""
    return json.dumps(plan.data, indent=2, ensure_ascii=False) + "\n"


def _cell(value: str | None) -> str:
    if value is None:
        return ""
    text = value.replace("|", "\\|").replace("\n", " ")
    return f"`{text}`"


def _row(change: Change, names: TermNames) -> str:
    before, after = {
        Action.ADD: (None, change.value),
        Action.REQUEST: (None, change.value),
        Action.CHANGE: (change.before, change.after),
        Action.REMOVE: (change.value, None),
        Action.CANCEL: (change.value, None),
    }[change.action]
    shown = [None if v is None else _value(change.path, v, names) for v in (before, after)]
    why = (change.because or "").replace("|", "\\|")
    return (f"| {change.action.value} | {path_label(change.path)} | {_cell(shown[0])} | {_cell(shown[1])} "
            f"| {why} |")


def _env_title(env: EnvPlan, words: Words) -> str:
    flag = " 🔒 protected" if env.name in words.protected else ""
    revision = f" · revision `{env.revision[:12]}`" if env.revision else ""
    return f"### {env.name}{flag}{revision}"


def _env_markdown(env: EnvPlan, words: Words) -> list[str]:
    names, body = words.names(env.name), []
    if env.changes:
        body += ["| action | setting | from | to | why |", "| --- | --- | --- | --- | --- |"]
        body += [_row(c, names) for c in env.changes]
    if env.blocked:
        body += ["", "**Blocked**", ""]
        body += [f"- {path_label(b.path)} {_cell(_value(b.path, b.value, names))}: {_why(b, names)}"
                 for b in env.blocked]
    if env.warnings:
        body += ["", "**Warnings**", ""]
        body += [f"- {w}" for w in env.warnings]
    if len(env.changes) > FOLD_AFTER:
        summary = f"<summary>{env.name}: {len(env.changes)} changes</summary>"
        body = ["<details>", summary, "", *body, "", "</details>"]
    return [_env_title(env, words), "", *body]


def _named(envs: Sequence[EnvPlan], words: Words) -> str:
    return ", ".join(f"{e.name} 🔒" if e.name in words.protected else e.name for e in envs) or "none"


def _summary_markdown(plan: Plan, words: Words) -> list[str]:
    changed = [e for e in plan.environments if e.changes]
    unchanged = [e for e in plan.environments if not e.changes and not e.blocked]
    blocked = [e for e in plan.environments if e.blocked]
    revisions = sorted({e.revision[:12] for e in plan.environments if e.revision})
    first = plan.environments[0].name if plan.environments else ""
    zones = {words.zones.get(e.name) for e in plan.environments}
    when = words.time(first, plan.at) if len(zones) == 1 else words.time("", plan.at)
    return [
        f"**{summary_line(plan)}**", "",
        f"- **Changed ({len(changed)}):** {_named(changed, words)}",
        f"- **Unchanged ({len(unchanged)}):** {_named(unchanged, words)}",
        f"- **Blocked ({len(blocked)}):** {_named(blocked, words)}",
        "", f"Revision {', '.join(f'`{r}`' for r in revisions) or 'none'} · planned for {when}"
        + (" · 🔒 protected: applied only with `--yes` or a saved plan" if words.protected else "") + ".",
    ]


def _fit(head: list[str], sections: list[tuple[EnvPlan, list[str]]], limit: int) -> tuple[list[str], list[str]]:
    """The lines that fit in a comment of `limit` characters, and the whole sections that did not."""
    shown, rest, size = list(head), [], len("\n".join(head)) + 400  # 400: room for the pointer line
    omitted: list[EnvPlan] = []
    for env, lines in sections:
        length = len("\n".join(lines)) + 2
        if omitted or size + length > limit:
            omitted.append(env)
            rest += ["", *lines]
            continue
        shown += ["", *lines]
        size += length
    if omitted:
        more = ", ".join(e.name for e in omitted)
        shown += ["", f"**{_plural(len(omitted), 'more environment')} ({more}): too long for a comment; the whole "
                  "plan is in this run's job summary.**", "", CUT_MARK]
    return shown, rest


def plan_markdown(plan: Plan, words: Words = NO_WORDS, limit: int = COMMENT_LIMIT) -> str:
    """The plan as a pull-request comment: a summary of the fleet first, each changed or blocked environment
    in full, the unchanged ones on one line. What does not fit in `limit` characters follows CUT_MARK."""
    head = _summary_markdown(plan, words)
    unchanged = [e for e in plan.environments if not e.changes and not e.blocked]
    if unchanged:
        head += ["", f"No changes in {_named(unchanged, words)}."]
    sections = [(e, _env_markdown(e, words)) for e in plan.environments if e.changes or e.blocked]
    shown, rest = _fit(head, sections, limit)
    return "\n".join([*shown, *rest]) + "\n"
