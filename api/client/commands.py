"""``ostinato jobs|endpoints|runs …``: the API from a terminal.

Every command takes ``--url`` (``OSTINATO_URL``, default http://127.0.0.1:8000),
``--token`` (``OSTINATO_TOKEN``) and ``--output table|json`` (``OSTINATO_OUTPUT``).
Tables are for people; ``--output json`` prints the API's own JSON. A refusal
prints the API's error (each invalid field on its own line) and exits 1; a
missing token or an unreachable server exits 2.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from enum import Enum
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer

from api.client.render import DEAD_LETTER_COLUMNS, ENDPOINT_COLUMNS, JOB_COLUMNS, LOG_COLUMNS, RUN_COLUMNS, Renderer
from api.client.session import DEFAULT_URL, ApiClient, ApiError, Unreachable

T = TypeVar("T")


class Output(str, Enum):
    table = "table"
    json = "json"


Url = Annotated[str, typer.Option("--url", envvar="OSTINATO_URL", help="The Ostinato server.")]
Token = Annotated[str, typer.Option("--token", envvar="OSTINATO_TOKEN", help="An API token (ost_…).", show_default=False)]
Format = Annotated[Output, typer.Option("--output", "-o", envvar="OSTINATO_OUTPUT", help="table for people, json for programs.")]
Limit = Annotated[int, typer.Option("--limit", min=1, max=500, help="Items per page.")]
CursorOption = Annotated[str | None, typer.Option("--cursor", help="Continue after the page that printed this cursor.")]

jobs_app = typer.Typer(no_args_is_help=True, help="Jobs: named groups of endpoints.")
endpoints_app = typer.Typer(no_args_is_help=True, help="Endpoints: things to run on a schedule.")
runs_app = typer.Typer(no_args_is_help=True, help="Runs: the record of every execution attempt.")


def register(app: typer.Typer) -> None:
    """Add the client's command groups to the ``ostinato`` command."""
    app.add_typer(jobs_app, name="jobs")
    app.add_typer(endpoints_app, name="endpoints")
    app.add_typer(runs_app, name="runs")


@contextmanager
def session(url: str, token: str) -> Iterator[ApiClient]:
    """A client, with every failure turned into a message on stderr and an exit code."""
    if not token:
        _fail("no API token: pass --token or set OSTINATO_TOKEN (ostinato tokens create issues one)", 2)
    client = ApiClient(url or DEFAULT_URL, token)
    try:
        yield client
    except ApiError as exc:
        _fail(f"{exc.code}: {exc.message}" + "".join(f"\n  {d.get('path') or '(body)'}: {d.get('message')}" for d in exc.details), 1)
    except Unreachable as exc:
        _fail(str(exc), 2)
    finally:
        client.close()


def _fail(message: str, code: int) -> None:
    typer.echo(f"ostinato: {message}", err=True)
    raise typer.Exit(code)


def _pairs(values: list[str], option: str) -> dict[str, str]:
    pairs = {}
    for value in values:
        key, sep, item = value.partition("=")
        if not sep or not key:
            _fail(f"{option} {value!r}: expected key=value", 2)
        pairs[key] = item
    return pairs


def _document(path: Path | None) -> dict[str, Any]:
    """A JSON object from ``path`` (``-``: standard input); empty without a path."""
    if path is None:
        return {}
    text = sys.stdin.read() if str(path) == "-" else path.read_text()
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        _fail(f"{path}: not JSON ({exc})", 2)
    if not isinstance(value, dict):
        _fail(f"{path}: expected a JSON object", 2)
    return value


def _show(output: Output, call: Callable[[ApiClient], T], url: str, token: str, show: Callable[[Renderer, T], None]) -> None:
    with session(url, token) as client:
        result = call(client)
    show(Renderer(output.value), result)


# -- jobs ---------------------------------------------------------------------------


@jobs_app.command("list")
def jobs_list(
    url: Url = DEFAULT_URL, token: Token = "", output: Format = Output.table,
    status: Annotated[str | None, typer.Option(help="active, paused or archived.")] = None,
    label: Annotated[str | None, typer.Option(help="Only jobs with this label, as key=value.")] = None,
    search: Annotated[str | None, typer.Option(help="Only jobs whose name or slug contains this.")] = None,
    limit: Limit = 50, cursor: CursorOption = None,
) -> None:
    """List jobs, newest first."""
    _show(output, lambda c: c.get("/v1/jobs", status=status, label=label, search=search, limit=limit, cursor=cursor),
          url, token, lambda r, page: r.listing(page, JOB_COLUMNS, title="jobs"))


@jobs_app.command("get")
def jobs_get(job: Annotated[str, typer.Argument(help="The job's id or slug.")], url: Url = DEFAULT_URL, token: Token = "", output: Format = Output.table) -> None:
    """Show one job."""
    _show(output, lambda c: c.job(job), url, token, Renderer.one)


@jobs_app.command("create")
def jobs_create(
    slug: Annotated[str | None, typer.Option(help="Unique within the tenant.")] = None,
    name: Annotated[str | None, typer.Option(help="A display name.")] = None,
    description: Annotated[str | None, typer.Option(help="What the job does, in natural language.")] = None,
    label: Annotated[list[str], typer.Option(help="key=value; repeat for more.")] = [],
    file: Annotated[Path | None, typer.Option("--file", "-f", help="A JSON job definition (- for stdin); options override it.")] = None,
    url: Url = DEFAULT_URL, token: Token = "", output: Format = Output.table,
) -> None:
    """Create a job (admin)."""
    spec = _document(file)
    spec.update({k: v for k, v in (("slug", slug), ("name", name), ("description", description)) if v is not None})
    if label:
        spec["labels"] = {**spec.get("labels", {}), **_pairs(label, "--label")}
    _show(output, lambda c: c.post("/v1/jobs", spec), url, token, Renderer.one)


def _job_action(action: str, summary: str) -> None:
    def command(job: Annotated[str, typer.Argument(help="The job's id or slug.")], url: Url = DEFAULT_URL, token: Token = "", output: Format = Output.table) -> None:
        _show(output, lambda c: c.post(f"/v1/jobs/{c.job(job)['id']}/{action}"), url, token, Renderer.one)

    command.__doc__ = summary
    jobs_app.command(action)(command)


_job_action("pause", "Pause a job: none of its endpoints runs until it resumes (operator).")
_job_action("resume", "Resume a paused job (operator).")
_job_action("archive", "Archive a job and its endpoints for good (admin).")


@jobs_app.command("endpoints")
def jobs_endpoints(
    job: Annotated[str, typer.Argument(help="The job's id or slug.")],
    url: Url = DEFAULT_URL, token: Token = "", output: Format = Output.table,
    status: Annotated[str | None, typer.Option(help="active, paused or archived.")] = None,
    limit: Limit = 50, cursor: CursorOption = None,
) -> None:
    """List a job's endpoints."""
    _show(output, lambda c: c.get(f"/v1/jobs/{c.job(job)['id']}/endpoints", status=status, limit=limit, cursor=cursor),
          url, token, lambda r, page: r.listing(page, ENDPOINT_COLUMNS, title="endpoints"))


# -- endpoints ----------------------------------------------------------------------


@endpoints_app.command("list")
def endpoints_list(
    url: Url = DEFAULT_URL, token: Token = "", output: Format = Output.table,
    job: Annotated[str | None, typer.Option(help="Only the endpoints of this job (id or slug).")] = None,
    status: Annotated[str | None, typer.Option(help="active, paused or archived.")] = None,
    limit: Limit = 50, cursor: CursorOption = None,
) -> None:
    """List endpoints, newest first."""

    def call(c: ApiClient) -> Any:
        job_id = c.job(job)["id"] if job else None
        return c.get("/v1/endpoints", job_id=job_id, status=status, limit=limit, cursor=cursor)

    _show(output, call, url, token, lambda r, page: r.listing(page, ENDPOINT_COLUMNS, title="endpoints"))


@endpoints_app.command("get")
def endpoints_get(endpoint: Annotated[str, typer.Argument(help="The endpoint's id.")], url: Url = DEFAULT_URL, token: Token = "", output: Format = Output.table) -> None:
    """Show one endpoint, with its hints and next run."""
    _show(output, lambda c: c.get(f"/v1/endpoints/{endpoint}"), url, token, Renderer.one)


@endpoints_app.command("create")
def endpoints_create(
    file: Annotated[Path, typer.Option("--file", "-f", help="A JSON endpoint definition (- for stdin), as POST /v1/endpoints takes it.")],
    job: Annotated[str | None, typer.Option(help="Put it in this job (id or slug).")] = None,
    url: Url = DEFAULT_URL, token: Token = "", output: Format = Output.table,
) -> None:
    """Define an endpoint from a JSON file (admin)."""
    spec = _document(file)

    def call(c: ApiClient) -> Any:
        if job:
            spec["job_id"] = c.job(job)["id"]
        return c.post("/v1/endpoints", spec)

    _show(output, call, url, token, Renderer.one)


@endpoints_app.command("pause")
def endpoints_pause(
    endpoint: Annotated[str, typer.Argument(help="The endpoint's id.")],
    until: Annotated[str | None, typer.Option(help="Resume by itself then (ISO 8601 with an offset, e.g. 2026-01-05T18:00:00Z).")] = None,
    url: Url = DEFAULT_URL, token: Token = "", output: Format = Output.table,
) -> None:
    """Pause an endpoint until resumed, or until a time (operator)."""
    body = {"until": until} if until else None
    _show(output, lambda c: c.post(f"/v1/endpoints/{endpoint}/pause", body), url, token, Renderer.one)


def _endpoint_action(action: str, summary: str) -> None:
    def command(endpoint: Annotated[str, typer.Argument(help="The endpoint's id.")], url: Url = DEFAULT_URL, token: Token = "", output: Format = Output.table) -> None:
        _show(output, lambda c: c.post(f"/v1/endpoints/{endpoint}/{action}"), url, token, Renderer.one)

    command.__doc__ = summary
    endpoints_app.command(action)(command)


_endpoint_action("resume", "Resume a paused endpoint (operator).")
_endpoint_action("archive", "Archive an endpoint for good (admin).")
_endpoint_action("reset-failures", "Forget an endpoint's consecutive failures (operator).")


@endpoints_app.command("hint")
def endpoints_hint(
    endpoint: Annotated[str, typer.Argument(help="The endpoint's id.")],
    every: Annotated[float | None, typer.Option("--every", "--interval-s", help="Run every this many seconds (an interval hint).")] = None,
    at: Annotated[str | None, typer.Option("--at", "--oneshot-at", help="Run once at this time (a one-shot hint).")] = None,
    ttl: Annotated[float | None, typer.Option("--ttl", "--ttl-s", help="The hint expires this many seconds from now.")] = None,
    expires_at: Annotated[str | None, typer.Option("--expires-at", help="The hint expires at this time.")] = None,
    reason: Annotated[str | None, typer.Option(help="Why, for whoever reads the endpoint later.")] = None,
    clear: Annotated[str | None, typer.Option("--clear", help="Clear the interval or the oneshot hint instead.")] = None,
    url: Url = DEFAULT_URL, token: Token = "", output: Format = Output.table,
) -> None:
    """Set an interval hint (--every) or a one-shot hint (--at), or clear one (--clear) (operator).

    An interval hint must lie within the endpoint's bounds; give --ttl or --expires-at."""
    if clear is not None:
        if clear not in ("interval", "oneshot"):
            _fail("--clear must be interval or oneshot", 2)
        if any(value is not None for value in (every, at, ttl, expires_at, reason)):
            _fail("--clear takes no other hint option", 2)
        _show(output, lambda c: c.delete(f"/v1/endpoints/{endpoint}/hints/{clear}"), url, token, Renderer.one)
        return
    if (every is None) == (at is None):
        _fail("give exactly one of --every (interval hint) or --at (one-shot hint), or --clear", 2)
    kind, body = ("interval", {"interval_s": every}) if every is not None else ("oneshot", {"run_at": at})
    body.update({k: v for k, v in (("ttl_s", ttl), ("expires_at", expires_at), ("reason", reason)) if v is not None})
    _show(output, lambda c: c.put(f"/v1/endpoints/{endpoint}/hints/{kind}", body), url, token, Renderer.one)


@endpoints_app.command("unhint")
def endpoints_unhint(
    endpoint: Annotated[str, typer.Argument(help="The endpoint's id.")],
    kind: Annotated[str, typer.Option("--kind", help="interval, oneshot or both.")] = "both",
    url: Url = DEFAULT_URL, token: Token = "", output: Format = Output.table,
) -> None:
    """Clear an endpoint's hints (operator)."""
    kinds = {"interval": ["interval"], "oneshot": ["oneshot"], "both": ["interval", "oneshot"]}.get(kind)
    if kinds is None:
        _fail("--kind must be interval, oneshot or both", 2)

    def call(c: ApiClient) -> Any:
        result = None
        for name in kinds:
            result = c.delete(f"/v1/endpoints/{endpoint}/hints/{name}")
        return result

    _show(output, call, url, token, Renderer.one)


@endpoints_app.command("runs")
def endpoints_runs(
    endpoint: Annotated[str, typer.Argument(help="The endpoint's id.")],
    url: Url = DEFAULT_URL, token: Token = "", output: Format = Output.table,
    status: Annotated[str | None, typer.Option(help="Only runs in this status.")] = None,
    limit: Limit = 50, cursor: CursorOption = None,
) -> None:
    """List an endpoint's runs, newest first."""
    _show(output, lambda c: c.get(f"/v1/endpoints/{endpoint}/runs", status=status, limit=limit, cursor=cursor),
          url, token, lambda r, page: r.listing(page, RUN_COLUMNS, title="runs"))


@endpoints_app.command("run")
def endpoints_run(
    endpoint: Annotated[str, typer.Argument(help="The endpoint's id.")],
    param: Annotated[list[str], typer.Option("--param", help="key=value (a string) for this run only; repeat for more.")] = [],
    params_json: Annotated[str | None, typer.Option("--params-json", help="A JSON object of params; --param entries override it.")] = None,
    url: Url = DEFAULT_URL, token: Token = "", output: Format = Output.table,
) -> None:
    """Run an endpoint now, outside its schedule (operator); prints the new run."""
    params: dict[str, Any] = {}
    if params_json is not None:
        try:
            params = json.loads(params_json)
        except json.JSONDecodeError as exc:
            _fail(f"--params-json: not JSON ({exc})", 2)
        if not isinstance(params, dict):
            _fail("--params-json: expected a JSON object", 2)
    params.update(_pairs(param, "--param"))
    _show(output, lambda c: c.post(f"/v1/endpoints/{endpoint}/run", {"params": params}), url, token, Renderer.one)


@endpoints_app.command("health")
def endpoints_health(
    endpoint: Annotated[str, typer.Argument(help="The endpoint's id.")],
    window: Annotated[int, typer.Option("--window", min=1, max=500, help="How many of the newest finished runs to summarize.")] = 100,
    url: Url = DEFAULT_URL, token: Token = "", output: Format = Output.table,
) -> None:
    """Show an endpoint's health: success rate, last success and failure, dead letters, next run and why."""
    _show(output, lambda c: c.get(f"/v1/endpoints/{endpoint}/health", window=window), url, token, Renderer.health)


# -- runs ---------------------------------------------------------------------------


@runs_app.command("list")
def runs_list(
    url: Url = DEFAULT_URL, token: Token = "", output: Format = Output.table,
    job: Annotated[str | None, typer.Option(help="Only runs of this job (id or slug).")] = None,
    endpoint: Annotated[str | None, typer.Option(help="Only runs of this endpoint (id).")] = None,
    status: Annotated[str | None, typer.Option(help="pending, running, succeeded, failed, canceled, timed_out or expired.")] = None,
    source: Annotated[str | None, typer.Option(help="What caused them, e.g. manual or retry.")] = None,
    since: Annotated[str | None, typer.Option(help="Scheduled at or after this time.")] = None,
    until: Annotated[str | None, typer.Option(help="Scheduled before this time.")] = None,
    limit: Limit = 50, cursor: CursorOption = None,
) -> None:
    """List runs, newest first."""

    def call(c: ApiClient) -> Any:
        job_id = c.job(job)["id"] if job else None
        return c.get(
            "/v1/runs", job_id=job_id, endpoint_id=endpoint, status=status, source=source, since=since, until=until,
            limit=limit, cursor=cursor,
        )

    _show(output, call, url, token, lambda r, page: r.listing(page, RUN_COLUMNS, title="runs"))


@runs_app.command("get")
def runs_get(run: Annotated[str, typer.Argument(help="The run's id.")], url: Url = DEFAULT_URL, token: Token = "", output: Format = Output.table) -> None:
    """Show one run, with its result or error."""
    _show(output, lambda c: c.get(f"/v1/runs/{run}"), url, token, Renderer.one)


@runs_app.command("logs")
def runs_logs(run: Annotated[str, typer.Argument(help="The run's id.")], url: Url = DEFAULT_URL, token: Token = "", output: Format = Output.table) -> None:
    """Show the lines a run logged, oldest first."""
    _show(output, lambda c: c.get(f"/v1/runs/{run}/logs"), url, token,
          lambda r, page: r.listing(page, LOG_COLUMNS, title="log lines"))


@runs_app.command("cancel")
def runs_cancel(run: Annotated[str, typer.Argument(help="The run's id.")], url: Url = DEFAULT_URL, token: Token = "", output: Format = Output.table) -> None:
    """Cancel a pending or running run (operator)."""
    _show(output, lambda c: c.post(f"/v1/runs/{run}/cancel"), url, token, Renderer.one)


@runs_app.command("dead-letters")
def runs_dead_letters(
    url: Url = DEFAULT_URL, token: Token = "", output: Format = Output.table,
    job: Annotated[str | None, typer.Option(help="Only runs of this job (id or slug).")] = None,
    endpoint: Annotated[str | None, typer.Option(help="Only runs of this endpoint (id).")] = None,
    status: Annotated[str | None, typer.Option(help="failed, timed_out or expired.")] = None,
    source: Annotated[str | None, typer.Option(help="What caused them, e.g. manual or retry.")] = None,
    since: Annotated[str | None, typer.Option(help="Scheduled at or after this time.")] = None,
    until: Annotated[str | None, typer.Option(help="Scheduled before this time.")] = None,
    limit: Limit = 50, cursor: CursorOption = None,
) -> None:
    """List runs that failed on their last attempt and wait for an operator, newest first."""

    def call(c: ApiClient) -> Any:
        job_id = c.job(job)["id"] if job else None
        return c.get(
            "/v1/dead-letters", job_id=job_id, endpoint_id=endpoint, status=status, source=source, since=since,
            until=until, limit=limit, cursor=cursor,
        )

    _show(output, call, url, token, lambda r, page: r.listing(page, DEAD_LETTER_COLUMNS, title="dead letters"))


@runs_app.command("retry")
def runs_retry(run: Annotated[str, typer.Argument(help="The dead letter's run id.")], url: Url = DEFAULT_URL, token: Token = "", output: Format = Output.table) -> None:
    """Retry a dead letter: a new run now, with a fresh attempt budget (operator); prints the new run."""
    _show(output, lambda c: c.post(f"/v1/dead-letters/{run}/retry"), url, token, Renderer.one)
