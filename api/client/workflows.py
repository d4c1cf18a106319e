"""``ostinato workflows|workflow-runs|events …``: workflows, their runs and events from a terminal.

The same options as the other groups (``--url``, ``--token``, ``--output``);
workflows are named by slug, runs by id.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from api.client.commands import CursorOption, Format, Limit, Output, Token, Url, _document, _fail, _pairs, _show
from api.client.render import EVENT_COLUMNS, STEP_STATE_COLUMNS, WORKFLOW_COLUMNS, WORKFLOW_RUN_COLUMNS, Renderer
from api.client.session import DEFAULT_URL

workflows_app = typer.Typer(no_args_is_help=True, help="Workflows: versioned DAGs of steps, and their runs.")
workflow_runs_app = typer.Typer(no_args_is_help=True, help="Workflow runs: one execution of a workflow version.")
events_app = typer.Typer(no_args_is_help=True, help="Events: published on topics; a topic may start workflows.")

Slug = Annotated[str, typer.Argument(help="The workflow's slug.")]
RunId = Annotated[str, typer.Argument(help="The workflow run's id.")]


def register(app: typer.Typer) -> None:
    """Add the workflow, workflow-run and event command groups to the ``ostinato`` command."""
    app.add_typer(workflows_app, name="workflows")
    app.add_typer(workflow_runs_app, name="workflow-runs")
    app.add_typer(events_app, name="events")


def _object(text: str | None, option: str) -> dict[str, Any]:
    """The JSON object given to ``option``; empty when not given."""
    if text is None:
        return {}
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        _fail(f"{option}: not JSON ({exc})", 2)
    if not isinstance(value, dict):
        _fail(f"{option}: expected a JSON object", 2)
    return value


def _definition(path: Path) -> dict[str, Any]:
    if str(path) != "-" and not path.is_file():
        _fail(f"{path}: no such file", 2)
    return _document(path)


# -- workflows ----------------------------------------------------------------------


@workflows_app.command("list")
def workflows_list(
    url: Url = DEFAULT_URL, token: Token = "", output: Format = Output.table,
    status: Annotated[str | None, typer.Option(help="active or archived.")] = None,
    limit: Limit = 50, cursor: CursorOption = None,
) -> None:
    """List workflows (each at its newest version), newest first."""
    _show(output, lambda c: c.get("/v1/workflows", status=status, limit=limit, cursor=cursor),
          url, token, lambda r, page: r.listing(page, WORKFLOW_COLUMNS, title="workflows"))


@workflows_app.command("show")
def workflows_show(
    slug: Slug,
    version: Annotated[int | None, typer.Option(min=1, help="This version instead of the newest.")] = None,
    url: Url = DEFAULT_URL, token: Token = "", output: Format = Output.table,
) -> None:
    """Show a workflow and its steps."""
    _show(output, lambda c: c.get(f"/v1/workflows/{slug}", version=version), url, token, Renderer.workflow)


@workflows_app.command("create")
def workflows_create(
    file: Annotated[Path, typer.Argument(help="A JSON workflow definition (- for stdin), as POST /v1/workflows takes it.")],
    url: Url = DEFAULT_URL, token: Token = "", output: Format = Output.table,
) -> None:
    """Define a workflow from a JSON file (admin); every problem is printed with its path."""
    spec = _definition(file)
    _show(output, lambda c: c.post("/v1/workflows", spec), url, token, Renderer.workflow)


@workflows_app.command("update")
def workflows_update(
    slug: Slug,
    file: Annotated[Path, typer.Argument(help="The next version's whole JSON definition (- for stdin).")],
    url: Url = DEFAULT_URL, token: Token = "", output: Format = Output.table,
) -> None:
    """Define a workflow's next version from a JSON file (admin); started runs keep their version."""
    spec = _definition(file)
    _show(output, lambda c: c.put(f"/v1/workflows/{slug}", spec), url, token, Renderer.workflow)


@workflows_app.command("archive")
def workflows_archive(slug: Slug, url: Url = DEFAULT_URL, token: Token = "", output: Format = Output.table) -> None:
    """Archive a workflow for good: it never runs again (admin)."""
    _show(output, lambda c: c.post(f"/v1/workflows/{slug}/archive"), url, token, Renderer.workflow)


@workflows_app.command("plan")
def workflows_plan(slug: Slug, url: Url = DEFAULT_URL, token: Token = "", output: Format = Output.table) -> None:
    """Preview the plan a run would follow now: stages, rationale, planner, and why it fell back."""
    _show(output, lambda c: c.post(f"/v1/workflows/{slug}/plan"), url, token, Renderer.plan)


@workflows_app.command("run")
def workflows_run(
    slug: Slug,
    input_json: Annotated[str | None, typer.Option("--input-json", help="The run's input, a JSON object.")] = None,
    input: Annotated[list[str], typer.Option("--input", help="key=value (a string); overrides --input-json; repeat for more.")] = [],
    url: Url = DEFAULT_URL, token: Token = "", output: Format = Output.table,
) -> None:
    """Start a run of a workflow's newest version (operator); prints the new run."""
    body = {**_object(input_json, "--input-json"), **_pairs(input, "--input")}
    _show(output, lambda c: c.post(f"/v1/workflows/{slug}/run", {"input": body}), url, token, Renderer.workflow_run)


@workflows_app.command("runs")
def workflows_runs(
    slug: Slug,
    url: Url = DEFAULT_URL, token: Token = "", output: Format = Output.table,
    limit: Limit = 50, cursor: CursorOption = None,
) -> None:
    """List a workflow's runs, newest first."""
    _show(output, lambda c: c.get(f"/v1/workflows/{slug}/runs", limit=limit, cursor=cursor),
          url, token, lambda r, page: r.listing(page, WORKFLOW_RUN_COLUMNS, title="workflow runs"))


@workflows_app.command("run-show")
def workflows_run_show(run: RunId, url: Url = DEFAULT_URL, token: Token = "", output: Format = Output.table) -> None:
    """Show a workflow run with its steps (the same as `ostinato workflow-runs show`)."""
    workflow_runs_show(run, url, token, output)


# -- workflow runs ------------------------------------------------------------------


@workflow_runs_app.command("show")
def workflow_runs_show(run: RunId, url: Url = DEFAULT_URL, token: Token = "", output: Format = Output.table) -> None:
    """Show a workflow run: status, input, plan, and each step's state and output."""
    _show(output, lambda c: c.get(f"/v1/workflow-runs/{run}"), url, token, Renderer.workflow_run)


@workflow_runs_app.command("steps")
def workflow_runs_steps(run: RunId, url: Url = DEFAULT_URL, token: Token = "", output: Format = Output.table) -> None:
    """List a workflow run's steps, in declared order."""
    _show(output, lambda c: c.get(f"/v1/workflow-runs/{run}/steps"), url, token,
          lambda r, page: r.listing(page, STEP_STATE_COLUMNS, title="steps"))


@workflow_runs_app.command("cancel")
def workflow_runs_cancel(run: RunId, url: Url = DEFAULT_URL, token: Token = "", output: Format = Output.table) -> None:
    """Cancel a pending or running workflow run and the runs executing its steps (operator)."""
    _show(output, lambda c: c.post(f"/v1/workflow-runs/{run}/cancel"), url, token, Renderer.workflow_run)


# -- events -------------------------------------------------------------------------


@events_app.command("publish")
def events_publish(
    topic: Annotated[str, typer.Argument(help="The topic, e.g. invoices.imported.")],
    payload_json: Annotated[str | None, typer.Option("--payload-json", help="The payload, a JSON object.")] = None,
    payload: Annotated[list[str], typer.Option("--payload", help="key=value (a string); overrides --payload-json; repeat for more.")] = [],
    url: Url = DEFAULT_URL, token: Token = "", output: Format = Output.table,
) -> None:
    """Publish an event (operator); workflows with an event trigger on its topic start a run."""
    body = {"topic": topic, "payload": {**_object(payload_json, "--payload-json"), **_pairs(payload, "--payload")}}
    _show(output, lambda c: c.post("/v1/events", body), url, token, Renderer.one)


@events_app.command("list")
def events_list(
    url: Url = DEFAULT_URL, token: Token = "", output: Format = Output.table,
    topic: Annotated[str | None, typer.Option(help="Only events on this topic.")] = None,
    after_seq: Annotated[int | None, typer.Option("--after-seq", min=0, help="Only events after this sequence number.")] = None,
    limit: Limit = 50, cursor: CursorOption = None,
) -> None:
    """List the tenant's events."""
    _show(output, lambda c: c.get("/v1/events", topic=topic, after_seq=after_seq, limit=limit, cursor=cursor),
          url, token, lambda r, page: r.listing(page, EVENT_COLUMNS, title="events"))
