"""The report page for every reader: AA contrast for each colour pair in its CSS, captions and header scopes,
labelled bars, and (when Chromium is installed) a layout check at 1280 and 390 px in a headless browser."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from reconciler.core.plan import Action, Change, EnvPlan
from reconciler.core.report import CSS, Bar, EnvironmentView, report_html

AA_TEXT = 4.5
START = datetime(2026, 12, 1, 6, tzinfo=UTC)
SHOTS = Path("/tmp/reconciler-report-shots")


# --- contrast, from the CSS itself ----------------------------------------------------------------------


def _variables(css: str) -> dict[str, str]:
    root = re.search(r":root\{([^}]*)\}", css)
    assert root is not None
    return dict(re.findall(r"--([\w-]+):\s*([^;}]+)", root.group(1)))


def _resolve(value: str, variables: dict[str, str]) -> str:
    named = re.fullmatch(r"var\(--([\w-]+)\)", value.strip())
    return variables[named.group(1)].strip() if named else value.strip()


def _luminance(hex_colour: str) -> float:
    digits = hex_colour.lstrip("#")
    assert re.fullmatch(r"[0-9a-fA-F]{6}", digits), f"{hex_colour}: the test reads #rrggbb colours only"
    channels = [int(digits[i:i + 2], 16) / 255 for i in (0, 2, 4)]
    linear = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def contrast(fg: str, bg: str) -> float:
    """The WCAG 2 contrast ratio of two #rrggbb colours."""
    hi, lo = sorted((_luminance(fg), _luminance(bg)), reverse=True)
    return (hi + 0.05) / (lo + 0.05)


def colour_pairs(css: str) -> list[tuple[str, str, str]]:
    """(selector, text colour, background) for every rule that sets either; the other is the page's."""
    variables = _variables(css)
    page_fg, page_bg = variables["fg"].strip(), variables["bg"].strip()
    pairs = []
    for selector, body in re.findall(r"([^{}]+)\{([^{}]*)\}", css):
        if selector.strip().startswith((":root", "@")) or "print" in selector:
            continue
        colour = re.search(r"(?<![-\w])color:\s*([^;}]+)", body)
        background = re.search(r"background(?:-color)?:\s*([^;}]+)", body)
        if colour is None and background is None:
            continue
        fg = _resolve(colour.group(1), variables) if colour else page_fg
        bg = _resolve(background.group(1), variables) if background else page_bg
        if fg != "inherit":
            pairs.append((selector.strip(), fg, bg))
    return pairs


def test_the_contrast_helper_knows_the_reference_values() -> None:
    assert contrast("#000000", "#ffffff") == pytest.approx(21.0)
    assert contrast("#777777", "#ffffff") == pytest.approx(4.48, abs=0.01)  # the classic near-miss
    assert contrast("#997404", "#ffffff") < AA_TEXT  # the report's old "pending" amber


def test_every_colour_pair_in_the_css_meets_wcag_aa() -> None:
    pairs = colour_pairs(CSS)
    assert len(pairs) >= 10  # text colours, and the bars' backgrounds under the page's text
    failing = [(s, fg, bg, round(contrast(fg, bg), 2)) for s, fg, bg in pairs if contrast(fg, bg) < AA_TEXT]
    assert failing == []
    bars = {bg for _, _, bg in pairs if bg != _variables(CSS)["bg"].strip()}
    assert {"#9ec5fe", "#a3cfbb", "#f1aeb5"} <= bars


# --- structure ------------------------------------------------------------------------------------------


def _view() -> EnvironmentView:
    return EnvironmentView(
        name="production", institution="Example State University", sis="banner", timezone="America/Chicago",
        applied={"revision": "abcdef1234567890", "at": "2026-11-25T18:05:00+00:00", "actor": "registrar@example.edu"},
        plan=EnvPlan("production", None, "sha256:x", (Change(Action.ADD, "merges.sections.terms", value="202810"),)),
        phases={"202720": "final-review"}, active_windows=(),
        bars=(Bar("windows", "banner-upgrade-2026-12", START + timedelta(days=4), START + timedelta(days=4, hours=8),
                  "Banner 9.4 upgrade; SUP-1234"),
              Bar("terms", "Fall 2026 (202710)", START - timedelta(days=90), START + timedelta(days=17))),
        transitions=(),
        activity=tuple({"at": "2026-11-25T18:05:00+00:00", "kind": "apply", "actor": "registrar@example.edu",
                        "outcome": "applied", "message": f"rollout step {n} with a rather long message to wrap",
                        "changes": n} for n in range(5)),
        terms={"202810": "Fall 2027", "202710": "Fall 2026"},
    )


def page() -> str:
    return report_html([_view(), _view()], at=START, days=14, generated=START)


def test_tables_have_captions_and_scoped_headers() -> None:
    html = page()
    tables = re.findall(r"<table[^>]*>.*?</table>", html, flags=re.S)
    assert tables
    for table in tables:
        assert "<caption>" in table
        headers = re.findall(r"<th(?: [^>]*)?>", table)
        assert headers and all('scope="col"' in h or 'scope="row"' in h for h in headers), table[:200]
        assert "<thead>" in table


def test_bars_carry_visible_labels_and_a_legend_in_words() -> None:
    html = page()
    assert '<span class="bar-label">banner-upgrade-2026-12</span>' in html
    assert ("banner-upgrade-2026-12: Sat 2026-12-05 00:00 -06:00 → Sat 2026-12-05 08:00 -06:00 "
            "(Banner 9.4 upgrade; SUP-1234)</li>") in html
    assert "+ merges.sections.terms Fall 2027 (202810)" in html


# --- in a browser ---------------------------------------------------------------------------------------

PROBE = """<script>
addEventListener('load', () => {
  const out = {innerWidth, scrollWidth: document.documentElement.scrollWidth, regions: []};
  for (const box of document.querySelectorAll('.scroll')) {
    const cells = box.querySelectorAll('thead th');
    const last = cells[cells.length - 1], first = cells[0];
    box.scrollLeft = box.scrollWidth;
    out.regions.push({overflowX: getComputedStyle(box).overflowX, boxWidth: box.clientWidth,
      scrollWidth: box.scrollWidth, lastRight: last.getBoundingClientRect().right - box.getBoundingClientRect().left,
      firstLeft: first.getBoundingClientRect().left - box.getBoundingClientRect().left,
      firstPosition: getComputedStyle(first).position});
  }
  parent.postMessage(JSON.stringify(out), '*');
});
</script>"""
FRAME = """<!DOCTYPE html><html><body style="margin:0">
<iframe src="probe.html" style="width:{width}px;height:{height}px;border:0;display:block"></iframe>
<script>addEventListener('message', e => document.body.setAttribute('data-probe', e.data));</script>
</body></html>"""


def _chromium() -> str | None:
    return next((p for p in (shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome")) if p), None)


def _run(browser: str, *args: str) -> str:
    done = subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                           "--virtual-time-budget=3000", *args], capture_output=True, text=True, timeout=90)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


@pytest.mark.parametrize("width", [pytest.param(1280, id="desktop"), pytest.param(390, id="phone")])
def test_layout_in_headless_chromium(tmp_path: Path, width: int) -> None:
    browser = _chromium()
    if browser is None:
        pytest.skip("Chromium is not installed (apt-get install -y chromium): the layout check needs a browser")
    # headless Chromium keeps its window at least 500 px wide: the page is measured in a frame of `width`
    (tmp_path / "probe.html").write_text(page().replace("</body>", PROBE + "</body>"), encoding="utf-8")
    frame = tmp_path / "frame.html"
    frame.write_text(FRAME.format(width=width, height=1800), encoding="utf-8")
    window = f"--window-size={max(width, 500)},1800"
    dom = _run(browser, window, "--dump-dom", frame.as_uri())
    found = re.search(r'data-probe="([^"]*)"', dom)
    assert found is not None, dom[:500]
    probe = json.loads(found.group(1).replace("&quot;", '"').replace("&amp;", "&"))
    assert probe["innerWidth"] == width
    assert probe["scrollWidth"] <= width  # the page itself never scrolls sideways
    for region in probe["regions"]:
        assert region["overflowX"] == "auto" and region["firstPosition"] == "sticky"
        assert region["firstLeft"] >= -1  # the key column stays in view when scrolled to the end
        assert region["lastRight"] <= region["boxWidth"] + 1  # and the last column can be scrolled to
        if width == 390:
            assert region["scrollWidth"] > region["boxWidth"]  # narrow: the table scrolls, columns keep width
    SHOTS.mkdir(exist_ok=True)
    shot = SHOTS / f"report-{width}.png"
    (tmp_path / "probe.html").write_text(page(), encoding="utf-8")
    _run(browser, window, f"--screenshot={shot}", frame.as_uri())
    assert shot.stat().st_size > 10_000
