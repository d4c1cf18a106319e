"""SIGKILL a worker in the middle of a workflow: the run still completes, each step's work done once.

Workers beat every second (``OSTINATO_HEARTBEAT_TIMEOUT_S=3``: a third of it), so
the reconciler takes the killed worker's step for dead within seconds, expires
its job run and retries it (two attempts per step). Each step's handler appends
its key to a file when its work is done, so the file counts side effects.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from tests.builders import TENANT
from tests.integration.engine.conftest import eventually, pg_fetch
from tests.integration.workflows.conftest import WorkflowEngine

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.slow]

HEARTBEAT_TIMEOUT_S = 3


def effect_step(key: str, path: Path, *depends_on: str, seconds: float = 0.0, **fields: Any) -> dict[str, Any]:
    return {
        "key": key,
        "target": {"kind": "python", "handler": "wtest.effect", "params": {"path": str(path), "step": key, "seconds": seconds}},
        "depends_on": list(depends_on),
        "retry": {"max_attempts": 2, "backoff_s": 0.5, "jitter": False},
        **fields,
    }


async def job_runs(engine: WorkflowEngine, workflow_run_id: str) -> list[Any]:
    return await pg_fetch(
        engine.dsn,
        "SELECT step_key, status, attempt, worker_id FROM runs WHERE workflow_run_id = $1 ORDER BY step_key, attempt",
        workflow_run_id,
    )


async def test_a_worker_killed_mid_workflow_leaves_each_steps_work_done_once_and_the_run_succeeds(
    engine: WorkflowEngine, tmp_path: Path
):
    # Given two workers, a scheduler, and a workflow whose second step takes 4 s before a fan-out and a join
    workers = await engine.start(workers=2, heartbeat_timeout_s=HEARTBEAT_TIMEOUT_S)
    effects = tmp_path / "effects.txt"
    effects.touch()
    await engine.workflows.create(TENANT, {
        "slug": "crash-test", "name": "Crash test",
        "steps": [
            effect_step("first", effects),
            effect_step("slow", effects, "first", seconds=4, inputs={"from_first": "$.steps.first.output.step"}),
            effect_step("left", effects, "slow"),
            effect_step("right", effects, "slow"),
            effect_step("join", effects, "left", "right", inputs={"n": "$.trigger.n"}),
        ],
    })
    run = await engine.workflows.start(TENANT, "crash-test", {"n": 1})

    # When the worker running the slow step is killed in the middle of it
    async def slow_running() -> list[Any]:
        rows = await job_runs(engine, run.id)
        return [r for r in rows if r["step_key"] == "slow" and r["status"] == "running"]

    [slow] = await eventually(slow_running, timeout=30, what="the slow step to start")
    victim = next(p for p in workers if p.runs_as(slow["worker_id"]))
    victim.kill()

    # Then the run completes on the other worker
    async def finished() -> str | None:
        rows = await pg_fetch(engine.dsn, "SELECT status FROM workflow_runs WHERE id = $1", run.id)
        status = rows[0]["status"]
        return status if status not in ("pending", "running") else None

    assert await eventually(finished, timeout=60, what="the workflow run to finish") == "succeeded"
    rows = await job_runs(engine, run.id)
    succeeded = Counter(r["step_key"] for r in rows if r["status"] == "succeeded")
    assert succeeded == {"first": 1, "slow": 1, "left": 1, "right": 1, "join": 1}
    assert [(r["attempt"], r["status"]) for r in rows if r["step_key"] == "slow"] == [(1, "expired"), (2, "succeeded")]
    assert len(rows) == 6
    # and each step's work was done exactly once
    assert Counter(effects.read_text().split()) == {"first": 1, "slow": 1, "left": 1, "right": 1, "join": 1}
    steps = await pg_fetch(engine.dsn, "SELECT step_key, status, attempt FROM workflow_run_steps WHERE workflow_run_id = $1", run.id)
    assert {(s["step_key"], s["status"]) for s in steps} == {
        ("first", "succeeded"), ("slow", "succeeded"), ("left", "succeeded"), ("right", "succeeded"), ("join", "succeeded"),
    }
    assert next(s["attempt"] for s in steps if s["step_key"] == "slow") == 2
    topics = [r["topic"] for r in await pg_fetch(engine.dsn, "SELECT topic FROM events ORDER BY seq")]
    assert topics[0] == "workflow.run.started" and topics[-1] == "workflow.run.succeeded"
    assert await engine.unfinished() == 0


async def test_a_wide_fan_out_across_two_workers_joins_once(engine: WorkflowEngine, tmp_path: Path):
    # Given two workers and a workflow of 40 branches into one join
    await engine.start(workers=2, heartbeat_timeout_s=HEARTBEAT_TIMEOUT_S)
    effects = tmp_path / "effects.txt"
    effects.touch()
    branches = [effect_step(f"b{i}", effects, seconds=0.05 * (i % 5)) for i in range(40)]
    await engine.workflows.create(TENANT, {
        "slug": "wide", "name": "Wide",
        "steps": [*branches, effect_step("join", effects, *(b["key"] for b in branches))],
    })

    # When it runs, its branches finishing on both workers at once
    run = await engine.workflows.start(TENANT, "wide")

    async def finished() -> str | None:
        rows = await pg_fetch(engine.dsn, "SELECT status FROM workflow_runs WHERE id = $1", run.id)
        return rows[0]["status"] if rows[0]["status"] not in ("pending", "running") else None

    # Then the join ran once, after every branch
    assert await eventually(finished, timeout=60, what="the workflow run to finish") == "succeeded"
    rows = await job_runs(engine, run.id)
    assert len(rows) == 41 and {r["status"] for r in rows} == {"succeeded"}
    assert len({r["worker_id"] for r in rows}) == 2
    lines = effects.read_text().split()
    assert Counter(lines) == {**{f"b{i}": 1 for i in range(40)}, "join": 1}
    assert lines[-1] == "join"
