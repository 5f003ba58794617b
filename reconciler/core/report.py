"""The report: per-environment views → one self-contained static HTML page.

Flow: the `report` command reads specs and live state and builds the plan, **environment_view**
gathers what one environment shows (applied record, pending plan, timeline over [at, at+days),
recent activity), **report_html** renders every view. Pure: the instants come in as arguments,
and every value is escaped on its way into the page.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any

from reconciler.core.plan import EnvPlan
from reconciler.core.render import blocked_line, change_line
from reconciler.core.timeline import Event, Occurrence, Timeline, Transition, get_zone, local_midnight
from reconciler.core.words import TermNames, local_time, term_label, term_names
from reconciler.model import EnvironmentSpec

ACTIVITY_SHOWN = 20
_LANES = ("terms", "phases", "windows")


@dataclass(frozen=True)
class Bar:
    """One stretch on the timeline, [start, end) in UTC, in a lane (terms, phases or windows)."""

    lane: str
    label: str
    start: datetime
    end: datetime
    detail: str = ""


@dataclass(frozen=True)
class EnvironmentView:
    """What the report shows of one environment."""

    name: str
    institution: str
    sis: str
    timezone: str
    applied: Mapping[str, Any] | None
    plan: EnvPlan
    phases: Mapping[str, str]
    active_windows: tuple[str, ...]
    bars: tuple[Bar, ...]
    transitions: tuple[Transition, ...]
    activity: tuple[Mapping[str, Any], ...]
    terms: TermNames = field(default_factory=dict)
    """Term code → name, from the environment's Terms."""

    @property
    def in_sync(self) -> bool:
        return self.plan.is_empty


def environment_view(spec: EnvironmentSpec, live: Mapping[str, Any], plan: EnvPlan, at: datetime,
                     days: int) -> EnvironmentView:
    """One environment's view at `at`, its timeline over [at, at + days)."""
    timeline = Timeline.from_spec(spec)
    end, names = at + timedelta(days=days), term_names(spec)
    applied = live.get("applied")
    activity = [e for e in live.get("activity") or () if isinstance(e, Mapping)]
    return EnvironmentView(
        name=spec.name,
        institution=str(spec.config.get("institution") or ""),
        sis=str(spec.config.get("sis") or ""),
        timezone=spec.timezone,
        applied=applied if isinstance(applied, Mapping) else None,
        plan=plan,
        phases=timeline.current_phases(at),
        active_windows=tuple(_active(o, timeline.tz) for o in timeline.active_windows(at)),
        bars=tuple(timeline_bars(timeline, at, end)),
        transitions=tuple(timeline.transitions(at, end)),
        activity=tuple(activity[-ACTIVITY_SHOWN:]),
        terms=names,
    )


def _active(occurrence: Occurrence, tz: tzinfo) -> str:
    """An open window as a registrar asks about it: which, why, which ticket, until when."""
    window = occurrence.window
    why = ", ".join(x for x in (window.reason, window.ticket) if x)
    return f"{window.id}" + (f" ({why})" if why else "") + f" until {local_time(occurrence.end, tz)}"


def timeline_bars(timeline: Timeline, start: datetime, end: datetime) -> list[Bar]:
    """Terms, phases and window occurrences that overlap [start, end)."""
    names = {t.code: t.name for t in timeline.terms}
    bars = [Bar("terms", term_label(t.code, names), t.start, t.end) for t in timeline.terms]
    bars += [Bar("phases", p.name, p.start, p.end, term_label(p.term, names)) for p in timeline.phases]
    bars = [b for b in bars if b.start < end and b.end > start]
    return bars + [_window_bar(o) for o in timeline.occurrences(start, end)]


def _window_bar(occurrence: Occurrence) -> Bar:
    window = occurrence.window
    detail = "; ".join(x for x in (window.reason, window.ticket, "pauses " + ", ".join(window.pause)) if x)
    return Bar("windows", window.id, occurrence.start, occurrence.end, detail)


# --- the page ---------------------------------------------------------------------------------


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _local(instant: datetime, tz: tzinfo) -> str:
    return local_time(instant, tz)


def _page_zone(views: Sequence[EnvironmentView]) -> tzinfo:
    """The environments' zone when they share one; UTC for a fleet across zones."""
    zones = {v.timezone for v in views}
    return get_zone(zones.pop()) if len(zones) == 1 else UTC


def report_html(views: Sequence[EnvironmentView], *, at: datetime, days: int, generated: datetime) -> str:
    """The whole page: a summary table, then one section per environment."""
    end, tz = at + timedelta(days=days), _page_zone(views)
    head = (f"<header><h1>reconciler report</h1><p>Generated {_e(_local(generated, tz))}. "
            f"State as of {_e(_local(at, tz))}; timeline to {_e(_local(end, tz))} ({days} days).</p></header>")
    body = [head, "<main>", _summary(views), *(_section(v, at, end) for v in views), "</main>"]
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>reconciler report</title>\n<style>{CSS}</style>\n</head>\n<body>\n"
        + "\n".join(body) + "\n</body>\n</html>\n"
    )


def _summary(views: Sequence[EnvironmentView]) -> str:
    rows = "".join(
        f'<tr><th scope="row"><a href="#env-{_e(v.name)}">{_e(v.name)}</a></th><td>{_state(v)}</td>'
        f"<td>{_e(v.institution)}</td><td>{_e(v.sis)}</td><td>{_e(v.timezone)}</td></tr>"
        for v in views
    )
    table = _table("Every environment and whether live matches its YAML",
                   ("environment", "state", "institution", "SIS", "time zone"), rows)
    return f"<section><h2>Environments</h2>{table}</section>"


def _table(caption: str, columns: Sequence[str], rows: str, css: str = "") -> str:
    """A table in a container that scrolls sideways on a narrow screen (its first column stays put),
    with a caption and column-scoped header cells."""
    head = "".join(f'<th scope="col">{_e(c)}</th>' for c in columns)
    klass = f' class="{css}"' if css else ""
    return (f'<div class="scroll" role="region" tabindex="0" aria-label="{_e(caption)}"><table{klass}>'
            f"<caption>{_e(caption)}</caption><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table></div>")


def _state(view: EnvironmentView) -> str:
    if view.in_sync:
        text, css = "in sync", "ok"
    else:
        count = len(view.plan.changes)
        text, css = f"{count} change{'s' if count != 1 else ''} pending", "pending"
    if view.plan.blocked:
        text += f", {len(view.plan.blocked)} blocked"
    return f'<span class="{css}">{_e(text)}</span>'


def _section(view: EnvironmentView, start: datetime, end: datetime) -> str:
    tz = get_zone(view.timezone)
    parts = [f'<section class="env" id="env-{_e(view.name)}"><h2>{_e(view.name)}</h2>', _facts(view, tz),
             "<h3>Timeline</h3>", _timeline(view, tz, start, end), _legend(view.bars, tz),
             _transitions(view.transitions, tz, view.terms),
             "<h3>Pending plan</h3>", _plan(view.plan, view.terms), "<h3>Recent activity</h3>",
             _activity(view.activity, tz),
             "</section>"]
    return "\n".join(parts)


def _facts(view: EnvironmentView, tz: tzinfo) -> str:
    phases = ", ".join(f"{term_label(term, view.terms)}: {name}"
                       for term, name in sorted(view.phases.items())) or "none"
    rows = [("institution", _e(view.institution)), ("SIS", _e(view.sis)), ("time zone", _e(view.timezone)),
            ("applied", _e(_applied(view.applied, tz))), ("state", _state(view)), ("phases", _e(phases)),
            ("active windows", _e(", ".join(view.active_windows) or "none"))]
    return "<dl>" + "".join(f"<dt>{k}</dt><dd>{v}</dd>" for k, v in rows) + "</dl>"


def _applied(applied: Mapping[str, Any] | None, tz: tzinfo) -> str:
    if not applied:
        return "never"
    text = f"revision {str(applied.get('revision') or 'none')[:12]}, {_when(applied.get('at'), tz)}"
    if applied.get("actor"):
        text += f" by {applied['actor']}"
    return text + (f" ({applied['plan_id']})" if applied.get("plan_id") else "")


def _when(value: Any, tz: tzinfo) -> str:
    """An ISO instant from the live side, in the environment's zone (as given, when it is not one)."""
    try:
        instant = datetime.fromisoformat(str(value))
    except ValueError:
        return str(value)
    return _local(instant, tz) if instant.tzinfo else str(value)


def _pct(instant: datetime, start: datetime, end: datetime) -> float:
    share = (instant - start) / (end - start)
    return round(min(100.0, max(0.0, share * 100)), 3)


_LABEL_SHARE = 0.013
"""About how much of the narrowest track (40rem less the lane names) one character of a label outside its
bar takes: a window's label is written after its bar, and the next bar in its row must not cover it."""


def _reach(bar: Bar, span: timedelta) -> datetime:
    """Where a bar and, for a window, its label end: the label is written after the bar."""
    return bar.end + span * (_LABEL_SHARE * (len(bar.label) + 1)) if bar.lane == "windows" else bar.end


def _rows(bars: Sequence[Bar], span: timedelta = timedelta(0)) -> list[list[Bar]]:
    """Bars packed into rows so that no two (nor a window's label) overlap within a row (first fit, by start)."""
    rows: list[list[Bar]] = []
    for bar in sorted(bars, key=lambda b: (b.start, b.end, b.label)):
        row = next((r for r in rows if _reach(r[-1], span) <= bar.start), None)
        if row is None:
            rows.append([bar])
        else:
            row.append(bar)
    return rows


def _timeline(view: EnvironmentView, tz: tzinfo, start: datetime, end: datetime) -> str:
    label = f"Timeline of {view.name}: terms, phases and maintenance windows"
    lines = [f'<div class="timeline" role="region" tabindex="0" aria-label="{_e(label)}"><div class="timeline-inner">',
             _ticks(tz, start, end)]
    for lane in _LANES:
        rows = _rows([b for b in view.bars if b.lane == lane], end - start) or [[]]
        for n, row in enumerate(rows):
            name = lane if n == 0 else ""
            bars = "".join(_bar(b, tz, start, end) for b in row)
            lines.append(f'<div class="lane {lane}"><span class="lane-name">{name}</span>'
                         f'<div class="track">{bars}</div></div>')
    return "\n".join([*lines, "</div></div>"])


def _legend(bars: Sequence[Bar], tz: tzinfo) -> str:
    """Every bar of the timeline in words, so that none depends on its width to be read."""
    if not bars:
        return ""
    items = "".join(f'<li><span class="key {b.lane}">{_e(b.lane.rstrip("s"))}</span> {_e(b.label)}: '
                    f"{_e(_local(b.start, tz))} → {_e(_local(b.end, tz))}"
                    + (f" ({_e(b.detail)})" if b.detail else "") + "</li>"
                    for b in sorted(bars, key=lambda b: (_LANES.index(b.lane), b.start, b.label)))
    return f'<details><summary>{len(bars)} bars in words</summary><ul class="legend">{items}</ul></details>'


def _bar(bar: Bar, tz: tzinfo, start: datetime, end: datetime) -> str:
    left = _pct(bar.start, start, end)
    width = max(0.6, _pct(bar.end, start, end) - left)
    title = f"{bar.label}: {_local(bar.start, tz)} → {_local(bar.end, tz)}" + (f" ({bar.detail})" if bar.detail else "")
    return (f'<div class="bar" style="left:{left}%;width:{width}%" title="{_e(title)}">'
            f'<span class="bar-label">{_e(bar.label)}</span></div>')


def _ticks(tz: tzinfo, start: datetime, end: datetime) -> str:
    """Local midnights across the range, about eight of them at most."""
    days = max(1, (end - start).days)
    step = max(1, -(-days // 8))
    day = start.astimezone(tz).date()
    if local_midnight(day, tz) < start:
        day += timedelta(days=1)
    marks = []
    while (instant := local_midnight(day, tz)) < end:
        marks.append(f'<span class="tick" style="left:{_pct(instant, start, end)}%">{day:%b %d}</span>')
        day += timedelta(days=step)
    return f'<div class="lane ticks"><span class="lane-name"></span><div class="track">{"".join(marks)}</div></div>'


def _transitions(transitions: Sequence[Transition], tz: tzinfo, names: TermNames) -> str:
    if not transitions:
        return "<p>No transitions in this range.</p>"
    terms = (Event.TERM_START, Event.TERM_END)
    rows = "".join(f'<tr><th scope="row">{_e(_local(t.at, tz))}</th><td>{_e(t.event.value)}</td>'
                   f"<td>{_e(term_label(t.id, names) if t.event in terms else t.id)}</td></tr>"
                   for t in transitions)
    table = _table("Window, phase and term boundaries in this range", ("when", "event", "what"), rows)
    return f"<details open><summary>{len(transitions)} transitions</summary>{table}</details>"


def _plan(plan: EnvPlan, names: TermNames) -> str:
    items = [f'<li class="change">{_e(change_line(c, names))}</li>' for c in plan.changes]
    items += [f'<li class="blocked">{_e(blocked_line(b, names))}</li>' for b in plan.blocked]
    items += [f'<li class="warning">warning: {_e(w)}</li>' for w in plan.warnings]
    if not items:
        return "<p>No changes. Live matches the desired state.</p>"
    return '<ul class="plan">' + "".join(items) + "</ul>"


def _activity(entries: Sequence[Mapping[str, Any]], tz: tzinfo) -> str:
    if not entries:
        return "<p>No activity recorded.</p>"
    rows = "".join(
        f'<tr><th scope="row">{_e(_when(e.get("at"), tz))}</th><td>{_e(e.get("kind") or "")}</td>'
        f"<td>{_e(e.get('outcome') or '')}</td><td>{_e(e.get('actor') or '')}</td><td>{_e(_detail(e))}</td></tr>"
        for e in reversed(entries)
    )
    return _table("Recent applies, pauses, resumes and merges, newest first",
                  ("when", "kind", "outcome", "actor", "what"), rows, "activity")


def _detail(entry: Mapping[str, Any]) -> str:
    parts = [str(entry[k]) for k in ("message", "error") if entry.get(k)]
    if isinstance(entry.get("set"), Mapping):
        parts.append("set " + ", ".join(map(str, entry["set"])))
    if isinstance(entry.get("changes"), int):
        parts.append(f"{entry['changes']} changes")
    return "; ".join(parts)


CSS = """
:root{--fg:#1d2330;--muted:#535b6a;--bg:#ffffff;--line:#d9dde5;--link:#0b57d0;--ok:#146c43;--warn:#7a5901;
--bad:#a52834;--term:#9ec5fe;--phase:#a3cfbb;--window:#f1aeb5}
*{box-sizing:border-box}
body{font:15px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;color:var(--fg);background:var(--bg);
margin:0 auto;max-width:64rem;padding:1rem}
a{color:var(--link)}
h1{font-size:1.5rem;margin:.2rem 0}h2{font-size:1.25rem;border-bottom:2px solid var(--line);padding-bottom:.2rem}
h3{font-size:1rem;margin:1.2rem 0 .4rem}header p{color:var(--muted);margin:.2rem 0 1rem}
table{border-collapse:separate;border-spacing:0;width:100%;font-size:.9rem}
caption{caption-side:top;text-align:left;color:var(--muted);font-size:.8rem;padding:0 0 .2rem}
th,td{text-align:left;padding:.3rem .5rem;border-bottom:1px solid var(--line);vertical-align:top}
th{font-weight:600}tbody th{font-weight:400;white-space:nowrap}
.scroll{overflow-x:auto;max-width:100%}
.scroll table{min-width:34rem}.scroll td{min-width:5rem}.activity td:last-child{min-width:16rem}
.scroll tr>:first-child{position:sticky;left:0;z-index:1;color:var(--fg);background:var(--bg);
box-shadow:1px 0 0 var(--line)}
dl{display:grid;grid-template-columns:max-content 1fr;gap:.15rem 1rem;margin:0}dt{color:var(--muted)}
dd{margin:0;overflow-wrap:anywhere}
.ok,.pending{font-weight:600;white-space:nowrap}.ok{color:var(--ok)}.pending{color:var(--warn)}
.plan{font-family:ui-monospace,monospace;font-size:.85rem;padding-left:1.2rem;overflow-wrap:anywhere}
.plan .blocked{color:var(--bad)}.plan .warning{color:var(--warn)}
.timeline{border:1px solid var(--line);border-radius:4px;padding:.4rem;margin-bottom:.5rem;overflow-x:auto}
.timeline-inner{min-width:40rem}
.lane{display:flex;align-items:center;min-height:1.6rem}
.lane-name{flex:0 0 4.5rem;font-size:.75rem;color:var(--muted);position:sticky;left:0;z-index:2;
background:var(--bg);align-self:stretch;display:flex;align-items:center}
.track{position:relative;flex:1;height:1.4rem}
.ticks .track{height:1.2rem;border-bottom:1px solid var(--line)}
.tick{position:absolute;top:0;font-size:.7rem;color:var(--muted);border-left:1px solid var(--line);
padding-left:2px;white-space:nowrap}
.bar{position:absolute;top:.1rem;height:1.2rem;border-radius:3px;font-size:.7rem;line-height:1.2rem;
padding:0 3px;overflow:hidden;white-space:nowrap;text-overflow:ellipsis;border:1px solid rgba(0,0,0,.25);
color:var(--fg)}
.terms .bar,.key.terms{background:var(--term)}.phases .bar,.key.phases{background:var(--phase)}
.windows .bar,.key.windows{background:var(--window)}
.windows .bar{overflow:visible;min-width:6px}
.windows .bar-label{position:absolute;left:100%;padding-left:3px;color:var(--fg);background:var(--bg)}
.key{display:inline-block;padding:0 .3rem;border-radius:3px;font-size:.75rem;color:var(--fg)}
.legend{font-size:.85rem;padding-left:1.2rem;margin:.3rem 0;overflow-wrap:anywhere}
summary{cursor:pointer;color:var(--muted);font-size:.85rem}
:focus-visible{outline:2px solid var(--link);outline-offset:2px}
@media (max-width:40rem){body{padding:.5rem;font-size:14px}.lane-name{flex-basis:3.2rem}
dl{grid-template-columns:1fr}dt{margin-top:.3rem}}
@media print{body{max-width:none;font-size:11pt}a{color:inherit;text-decoration:none}
.env{break-before:page}.timeline,tr{break-inside:avoid}h2,h3{break-after:avoid}
.scroll,.timeline{overflow:visible}.scroll tr>:first-child{position:static}
.bar,.key,.ok,.pending{-webkit-print-color-adjust:exact;print-color-adjust:exact}}
"""
