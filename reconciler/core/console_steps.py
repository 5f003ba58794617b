"""A plan's changes as the numbered steps a person takes in the platform's admin console (DESIGN §5
"Guided apply"), in the console's own words, in the plan's safe order, and the comment to type into the
Activity tab. Pure: a plan and the environment's YAML in, text out.

Flow: `core.apply.plan_one` → **console_steps** → `engine.guided` prints them, records the request, then
checks each step against live (`Step.changes`) until none is left.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from reconciler.core.plan import Action, Change, EnvPlan, split_path
from reconciler.model import EnvironmentSpec, Kind

SCHEDULE_LABELS = {"nightly": "Should merges run nightly?", "realtime": "Should merges run in real-time?"}
SEND_UPDATES = "Should Coursedog send updates to the SIS?"
TYPE_SCREENS = {"courses": "Courses", "sections": "Sections", "relationships": "Relationships", "terms": "Terms",
                "buildings": "Buildings", "rooms": "Rooms", "departments": "Departments", "professors": "Professors"}
OPTION_LABELS = {
    "only_selected_terms": "Only run integration for selected terms",
    "post_fields": "the section fields posted to the SIS",
    "on_delete": "what the SIS does with a deleted section",
    "on_conflict": "the source of truth",
    "allow_empty": "accept an empty dataset from the SIS",
}
OWNERS = {"institution": "Always Institution", "sis": "Always Institution", "platform": "Always Coursedog",
          "shared": "shared ownership"}
MERGE_SETTINGS = "Merge Settings"


@dataclass(frozen=True)
class Step:
    """One numbered thing to do; `changes` are the plan's changes it makes (seen in live once done)."""

    text: str
    changes: tuple[Change, ...] = ()


def yes_no(value: Any) -> str:
    return "“YES”" if value else "“NO”"


def console_steps(env_plan: EnvPlan, spec: EnvironmentSpec, comment: str) -> list[Step]:
    """Every step, in order: say so to support (a pause), open the console, each screen's changes with SAVE
    and a check, then the Activity comment."""
    names = term_names(spec)
    steps: list[Step] = []
    if any(c.path.startswith("schedule.") and c.after is False for c in env_plan.changes):
        steps.append(Step("Tell the platform's support of the outage (email or a support ticket), naming the "
                          f"environment {spec.name} and the maintenance timeframe."))
    steps.append(Step(f"Open the Admin Console of the {spec.name} environment."))
    for screen, changes in _by_screen(env_plan.changes):
        steps.append(Step(f"Select “{screen}” from the left-hand menu."))
        steps += [Step(change_words(c, names), (c,)) for c in changes]
        if screen == MERGE_SETTINGS:
            steps.append(Step("Press “SAVE” at the top of the Merge Settings page."))
        steps.append(Step("Refresh the page and check that each setting above shows its new value."))
    steps.append(Step("Open the “Activity” tab under “Merge Settings”, type this comment into the “Click Enter to "
                      f"comment” field and press Enter:\n    {comment}"))
    return steps


def numbered(steps: Sequence[Step]) -> list[str]:
    return [f"{i}. {step.text}" for i, step in enumerate(steps, 1)]


def activity_comment(env_plan: EnvPlan, revision: str | None, ticket: str | None) -> str:
    """What the person types into the Activity tab: why (the window and its ticket), and the revision."""
    reasons = list(dict.fromkeys(c.because for c in env_plan.changes if c.because))
    paused = [c for c in env_plan.changes if c.path.startswith("schedule.") and c.after is False]
    resumed = [c for c in env_plan.changes if c.path.startswith("schedule.") and c.after is True]
    what = "merges disabled" if paused and not resumed else "merges re-enabled" if resumed and not paused \
        else "merge settings changed"
    parts = [what, *(f"for {reason}" for reason in reasons)]
    if ticket:
        parts.append(f"ticket {ticket}")
    parts.append(f"revision {(revision or 'unknown')[:12]} (reconciler)")
    return "; ".join(parts)


def term_names(spec: EnvironmentSpec) -> dict[str, str]:
    terms = (spec.data(Kind.TERMS) or {}).get("terms") or []
    return {str(t.get("code")): f"{t.get('name')} ({t.get('code')})" for t in terms if isinstance(t, Mapping)}


def screen_of(change: Change) -> str:
    top = change.path.split(".")[0]
    return {"schedule": MERGE_SETTINGS, "merges": MERGE_SETTINGS, "send_updates": MERGE_SETTINGS,
            "reference_data": MERGE_SETTINGS, "merge_states": "Integration Saved States",
            "phases": "Scheduling Phases", "access": "Users" if change.path.startswith("access.users.") else "Roles",
            "version": "Hosting", "update_requests": "Hosting"}.get(top, MERGE_SETTINGS)


def _by_screen(changes: Sequence[Change]) -> list[tuple[str, list[Change]]]:
    """Consecutive changes grouped by the screen they are made on (the safe order is kept)."""
    groups: list[tuple[str, list[Change]]] = []
    for change in changes:
        screen = screen_of(change)
        if groups and groups[-1][0] == screen:
            groups[-1][1].append(change)
        else:
            groups.append((screen, [change]))
    return groups


def change_words(change: Change, names: Mapping[str, str]) -> str:
    """One change in the console's words."""
    keys = split_path(change.path)
    value = change.after if change.action is Action.CHANGE else change.value
    if keys[0] == "schedule":
        return f"Set “{SCHEDULE_LABELS.get(keys[1], keys[1])}” to {yes_no(value)}."
    if keys[0] == "send_updates":
        return f"For every merge type, set “{SEND_UPDATES}” to {yes_no(value)}."
    if keys[0] == "merges":
        return _merge_words(change, keys, value, names)
    if keys[0] == "reference_data":
        return f"Open the “{TYPE_SCREENS.get(keys[1], keys[1])}” merge type and keep its merge on: {yes_no(value)}."
    return _other_words(change, keys, value)


def _merge_words(change: Change, keys: tuple[str, ...], value: Any, names: Mapping[str, str]) -> str:
    screen = f"the “{TYPE_SCREENS.get(keys[1], keys[1])}” merge type"
    option = keys[2] if len(keys) > 2 else ""
    if option == "terms":
        term = names.get(str(value), str(value))
        return f"On {screen}, add the term {term}." if change.action is Action.ADD \
            else f"On {screen}, remove the term {term}."
    if option == "send_updates":
        return f"On {screen}, set “{SEND_UPDATES}” to {yes_no(value)}."
    if option == "source_of_truth":
        return f"On {screen}, under Type-Specific Settings, set {_owners(value)}."
    if option in ("only_selected_terms", "allow_empty"):
        return f"On {screen}, set “{OPTION_LABELS[option]}” to {yes_no(value)}."
    if option == "post_fields":
        return f"On {screen}, set {OPTION_LABELS[option]} to: {', '.join(value or []) or 'none'}."
    if option == "on_conflict":
        return f"On {screen}, under Type-Specific Settings, set the source of truth to “{OWNERS.get(value, value)}”."
    return f"On {screen}, set {OPTION_LABELS.get(option, option)} to “{value}”."


def _owners(value: Any) -> str:
    if not isinstance(value, Mapping):
        return f"the source of truth to “{OWNERS.get(value, value)}”"
    default = str(value.get("default"))
    text = f"the default source of truth to “{OWNERS.get(default, default)}”"
    fields = value.get("fields") or {}
    if fields:
        text += "; Field-specific exceptions: " + ", ".join(f"{k} “{OWNERS.get(v, v)}”" for k, v in fields.items())
    return text


def _other_words(change: Change, keys: tuple[str, ...], value: Any) -> str:
    verb = {Action.ADD: "Add", Action.CHANGE: "Change", Action.REMOVE: "Delete"}.get(change.action, "Add")
    if keys[0] == "phases":
        return f"{verb} the phase “{keys[1]}”{_phase(value) if change.action is not Action.REMOVE else ''}."
    if keys[0] == "merge_states":
        return f"{verb} the saved state “{keys[1]}”."
    if keys[0] == "access" and keys[1] == "users":
        if change.action is Action.REMOVE:
            return f"Remove the user {keys[2]}."
        return f"Give {keys[2]} the products: {', '.join((value or {}).get('products') or [])}."
    if keys[0] == "access":
        role = keys[2].replace("-", " ").title()
        permission = keys[3].replace("_", " ").title() if len(keys) > 3 else ""
        shown = "“Allow”" if value == "allow" else f"“{str(value).title()}”"
        return f"Under Roles > {role}, set “{permission}” to {shown}." if change.action is not Action.REMOVE \
            else f"Under Roles > {role}, clear “{permission}”."
    if keys[0] == "version":
        return f"Ask the hosting team to update the environment to version {value}."
    if keys[0] == "update_requests":
        if change.action is Action.CANCEL:
            return f"Cancel the update request {keys[1]} (only To Be Scheduled or Scheduled can be)."
        item = value if isinstance(value, Mapping) else {}
        return (f"Submit the update request {keys[1]}: {item.get('action')} of {item.get('site')}"
                f"{' to ' + str(item['version']) if item.get('version') else ''}, preferred {item.get('preferred')}.")
    return f"{verb} {change.path}: {value}."


def _phase(value: Any) -> str:
    if not isinstance(value, Mapping):
        return ""
    return (f" for term {value.get('term')} from {value.get('start')} to {value.get('end')}: editable fields "
            f"{', '.join(value.get('editable') or [])}; roles {', '.join(value.get('editors') or [])}")
