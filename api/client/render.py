"""How the client shows answers: rich tables for people, the API's JSON for programs."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

Column = tuple[str, Callable[[dict[str, Any]], Any]]


def when(value: str | None) -> str:
    """A UTC timestamp from the API, shortened for a table (``2026-01-05 12:00:00Z``)."""
    if not value:
        return "-"
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return value
    return moment.strftime("%Y-%m-%d %H:%M:%S") + "Z"


def schedule(endpoint: dict[str, Any]) -> str:
    spec = endpoint.get("schedule") or {}
    if spec.get("cron"):
        zone = spec.get("timezone") or "UTC"
        return f"{spec['cron']} ({zone})"
    if spec.get("interval_s") is not None:
        return f"every {spec['interval_s']:g}s"
    return "-"


def labels(job: dict[str, Any]) -> str:
    return ", ".join(f"{key}={value}" for key, value in sorted((job.get("labels") or {}).items())) or "-"


def duration(run: dict[str, Any]) -> str:
    value = run.get("duration_ms")
    return "-" if value is None else f"{value:.0f} ms"


JOB_COLUMNS: list[Column] = [
    ("ID", lambda j: j["id"]),
    ("SLUG", lambda j: j["slug"]),
    ("NAME", lambda j: j["name"]),
    ("STATUS", lambda j: j["status"]),
    ("LABELS", labels),
    ("CREATED", lambda j: when(j["created_at"])),
]
ENDPOINT_COLUMNS: list[Column] = [
    ("ID", lambda e: e["id"]),
    ("NAME", lambda e: e["name"]),
    ("STATUS", lambda e: e["status"] if not e.get("paused_until") else f"paused until {when(e['paused_until'])}"),
    ("SCHEDULE", schedule),
    ("NEXT RUN", lambda e: when(e.get("next_run_at"))),
    ("WHY", lambda e: e.get("next_run_source") or "-"),
    ("FAILURES", lambda e: e["failure_count"]),
]
RUN_COLUMNS: list[Column] = [
    ("ID", lambda r: r["id"]),
    ("ENDPOINT", lambda r: r["endpoint_id"]),
    ("STATUS", lambda r: r["status"]),
    ("SOURCE", lambda r: r["source"]),
    ("ATTEMPT", lambda r: r["attempt"]),
    ("SCHEDULED", lambda r: when(r["scheduled_at"])),
    ("DURATION", duration),
]
DEAD_LETTER_COLUMNS: list[Column] = [
    *RUN_COLUMNS[:4],
    ("FINISHED", lambda r: when(r.get("finished_at"))),
    ("ERROR", lambda r: r.get("error") or "-"),
]
LOG_COLUMNS: list[Column] = [
    ("SEQ", lambda line: line["seq"]),
    ("AT", lambda line: when(line["at"])),
    ("LEVEL", lambda line: line["level"]),
    ("MESSAGE", lambda line: line["message"]),
]


WORKFLOW_COLUMNS: list[Column] = [
    ("SLUG", lambda w: w["slug"]),
    ("NAME", lambda w: w["name"]),
    ("VERSION", lambda w: w["version"]),
    ("STATUS", lambda w: w["status"]),
    ("PLANNER", lambda w: w["planner"]),
    ("STEPS", lambda w: len(w["steps"])),
    ("TRIGGERS", lambda w: triggers(w)),
    ("UPDATED", lambda w: when(w["updated_at"])),
]
WORKFLOW_RUN_COLUMNS: list[Column] = [
    ("ID", lambda r: r["id"]),
    ("VERSION", lambda r: r["workflow_version"]),
    ("STATUS", lambda r: r["status"]),
    ("TRIGGER", lambda r: r["trigger"]),
    ("CREATED", lambda r: when(r["created_at"])),
    ("DURATION", lambda r: seconds(r.get("duration_s"))),
    ("ERROR", lambda r: r.get("error") or "-"),
]
STEP_COLUMNS: list[Column] = [
    ("STEP", lambda s: s["key"]),
    ("TARGET", lambda s: target(s["target"])),
    ("DEPENDS ON", lambda s: ", ".join(s["depends_on"]) or "-"),
    ("WHEN", lambda s: s.get("when") or "-"),
    ("ON FAILURE", lambda s: s["on_failure"]),
]
STEP_STATE_COLUMNS: list[Column] = [
    ("STEP", lambda s: s["step_key"]),
    ("STATUS", lambda s: s["status"] + (f" ({s['skip_cause']})" if s.get("skip_cause") else "")),
    ("ATTEMPT", lambda s: s["attempt"]),
    ("STARTED", lambda s: when(s.get("started_at"))),
    ("DURATION", lambda s: seconds(s.get("duration_s"))),
    ("OUTPUT / ERROR", lambda s: s["error"] if s.get("error") else compact(s.get("output"))),
]
EVENT_COLUMNS: list[Column] = [
    ("SEQ", lambda e: e["seq"]),
    ("TOPIC", lambda e: e["topic"]),
    ("AT", lambda e: when(e["at"])),
    ("PAYLOAD", lambda e: compact(e["payload"])),
    ("ID", lambda e: e["id"]),
]


def seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:g} s"


def compact(value: Any) -> str:
    """JSON on one line; ``-`` for null."""
    return "-" if value is None else json.dumps(value, sort_keys=True, separators=(",", ":"))


def target(spec: dict[str, Any]) -> str:
    kind = spec.get("kind")
    if kind == "endpoint":
        return f"endpoint {spec['endpoint_id']}"
    if kind == "http":
        return f"{spec['method']} {spec['url']}"
    if kind == "python":
        return f"python {spec['handler']}"
    return str(kind)


def triggers(workflow: dict[str, Any]) -> str:
    shown = []
    for trigger in workflow.get("triggers") or []:
        if trigger["kind"] == "cron":
            shown.append(f"cron {trigger['cron']} ({trigger.get('timezone') or 'UTC'})")
        elif trigger["kind"] == "event":
            shown.append(f"event {trigger['topic']}")
        else:
            shown.append("manual")
    return ", ".join(shown) or "-"


def plan_rows(plan: dict[str, Any]) -> list[tuple[str, str]]:
    """A plan (stages, rationale, planner, fallback_reason) as label and text, for people."""
    rows = [(f"stage {index}", ", ".join(stage)) for index, stage in enumerate(plan["stages"], start=1)]
    rows.append(("planner", plan["planner"]))
    rows.append(("rationale", plan.get("rationale") or "-"))
    if plan.get("fallback_reason"):
        rows.append(("fallback", plan["fallback_reason"]))
    return rows


def _run_ref(ref: dict[str, Any] | None) -> str:
    if not ref:
        return "-"
    error = f"  {ref['error']}" if ref.get("error") else ""
    return f"{when(ref['at'])}  run {ref['run_id']}{error}"


def health_rows(health: dict[str, Any]) -> list[tuple[str, str]]:
    """An endpoint's health (GET /v1/endpoints/{id}/health) as label and text, for people."""
    rate = health.get("success_rate")
    succeeded = health["counts"]["succeeded"]
    decided = health["finished"] - health["counts"]["canceled"]
    success = "- (no run succeeded or failed)" if rate is None else f"{rate:.0%} ({succeeded} of {decided} that succeeded or failed)"
    counts = ", ".join(f"{status} {count}" for status, count in health["counts"].items())
    limit = health.get("auto_pause_after")
    if health["paused"]:
        paused = f"until {when(health['paused_until'])}" if health.get("paused_until") else "yes, until resumed"
    else:
        paused = "no"
    dead = health["dead_letters"]
    newest = health.get("last_dead_letter")
    return [
        ("endpoint", f"{health['endpoint_id']} ({health['status']})"),
        ("window", f"the last {health['finished']} finished runs (at most {health['window']})"),
        ("success rate", success),
        ("counts", counts),
        ("in flight", f"{health['pending']} pending, {health['running']} running"),
        ("last success", _run_ref(health.get("last_success"))),
        ("last failure", _run_ref(health.get("last_failure"))),
        ("failures in a row", f"{health['failure_count']}" + (f" (pauses after {limit})" if limit else "")),
        ("paused", paused),
        ("next run", f"{when(health.get('next_run_at'))} ({health.get('next_run_source') or 'none planned'})"),
        ("dead letters", f"{dead}, newest {newest['run_id']}: ostinato runs retry {newest['run_id']}" if dead and newest else "0"),
    ]


class Renderer:
    """Writes answers as ``table`` (people) or ``json`` (programs: the API's own JSON)."""

    def __init__(self, output: str, console: Console | None = None) -> None:
        self.output = output
        # Piped or captured output keeps one row per line, for grep and friends.
        self.console = console or Console(width=None if sys.stdout.isatty() else 4096)

    def listing(self, page: dict[str, Any], columns: Sequence[Column], *, title: str) -> None:
        if self.output == "json":
            self.raw(page)
            return
        items = page["items"]
        if not items:
            self.console.print(f"no {title}")
            return
        self.table(items, columns)
        if page.get("next_cursor"):
            self.console.print(f"more: --cursor {page['next_cursor']}", style="dim")

    def one(self, item: dict[str, Any]) -> None:
        if self.output == "json":
            self.raw(item)
            return
        table = Table(show_header=False, show_edge=False, pad_edge=False, box=None)
        table.add_column(style="bold")
        table.add_column(overflow="fold")
        for key, value in item.items():
            shown = value if isinstance(value, str) else json.dumps(value, sort_keys=True)
            table.add_row(key, Text("-" if value is None else shown))
        self.console.print(table)

    def health(self, health: dict[str, Any]) -> None:
        if self.output == "json":
            self.raw(health)
            return
        self.pairs(health_rows(health))

    def workflow(self, workflow: dict[str, Any]) -> None:
        """A workflow version: its fields, then a table of its steps."""
        if self.output == "json":
            self.raw(workflow)
            return
        self.pairs([
            ("slug", workflow["slug"]),
            ("name", workflow["name"]),
            ("id", workflow["id"]),
            ("version", str(workflow["version"])),
            ("status", workflow["status"]),
            ("planner", workflow["planner"]),
            ("triggers", triggers(workflow)),
            ("description", workflow.get("description") or "-"),
            ("updated", when(workflow["updated_at"])),
        ])
        self.console.print()
        self.table(workflow["steps"], STEP_COLUMNS)

    def plan(self, plan: dict[str, Any]) -> None:
        if self.output == "json":
            self.raw(plan)
            return
        self.pairs(plan_rows(plan))

    def workflow_run(self, run: dict[str, Any]) -> None:
        """A workflow run: its fields, the plan it follows, then its steps when the answer has them."""
        if self.output == "json":
            self.raw(run)
            return
        plan = run.get("plan")
        self.pairs([
            ("id", run["id"]),
            ("workflow", f"{run['workflow_id']} (version {run['workflow_version']})"),
            ("status", run["status"]),
            ("trigger", run["trigger"]),
            ("input", compact(run.get("input"))),
            ("plan", " -> ".join(", ".join(stage) for stage in plan["stages"]) if plan else "-"),
            ("planner", (plan["planner"] + (f" (fallback: {plan['fallback_reason']})" if plan.get("fallback_reason") else "")) if plan else "-"),
            ("created", when(run["created_at"])),
            ("started", when(run.get("started_at"))),
            ("finished", when(run.get("finished_at"))),
            ("duration", seconds(run.get("duration_s"))),
            ("error", run.get("error") or "-"),
        ])
        if "steps" in run:
            self.console.print()
            self.table(run["steps"], STEP_STATE_COLUMNS)

    def table(self, items: Sequence[dict[str, Any]], columns: Sequence[Column]) -> None:
        table = Table(show_edge=False, pad_edge=False, box=None, header_style="bold")
        for name, _ in columns:
            table.add_column(name, overflow="fold")
        for item in items:
            table.add_row(*(Text(str(value(item))) for _, value in columns))  # text, never rich markup
        self.console.print(table)

    def pairs(self, rows: Sequence[tuple[str, str]]) -> None:
        table = Table(show_header=False, show_edge=False, pad_edge=False, box=None)
        table.add_column(style="bold")
        table.add_column(overflow="fold")
        for label, text in rows:
            table.add_row(label, Text(text))
        self.console.print(table)

    def raw(self, value: Any) -> None:
        """The API's JSON, unchanged and uncoloured, for ``jq`` and scripts."""
        sys.stdout.write(json.dumps(value, indent=2) + "\n")
