"""Workflow runs driven by the engine's own workers, on every store: the steps' job runs execute,
their outcomes advance the run in the transaction that records them."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from domain.runs import RunSource, RunStatus
from domain.workflows import SkipCause, StepStatus, WorkflowRunStatus
from tests.builders import TENANT
from tests.engine.fakes import Block
from tests.workflows.fakes import boom, ok
from tests.workflows.harness import Flow, step

S = StepStatus


async def test_a_fan_out_runs_its_branches_together_and_the_join_once_after_all_of_them(flow: Flow):
    workflow = await flow.define(
        step("split"),
        step("b1", "split"), step("b2", "split"), step("b3", "split"),
        step("join", "b1", "b2", "b3", inputs={"parts": ["$.steps.b1.output.step"], "n": "$.trigger.n"}),
    )
    run = await flow.start(workflow, {"n": 3})
    assert flow.dispatcher.run_ids and len(flow.dispatcher.run_ids) == 1  # only the first step

    await flow.work()

    assert (await flow.reread(run)).status is WorkflowRunStatus.SUCCEEDED
    keys = flow.executor.keys()
    assert keys[0] == "split" and keys[-1] == "join" and sorted(keys[1:4]) == ["b1", "b2", "b3"]
    assert keys.count("join") == 1
    # a reference is a whole input; inside a list the text is a literal
    assert flow.executor.params_of("join") == [{"parts": ["$.steps.b1.output.step"], "n": 3}]
    jobs = await flow.job_runs(run)
    assert len(jobs) == 5
    assert {(j.source, j.status, j.exclusive, j.attempt) for j in jobs} == {(RunSource.WORKFLOW, RunStatus.SUCCEEDED, False, 1)}
    assert {j.slot for j in jobs} == {f"step:{run.id}:{key}:1" for key in ("split", "b1", "b2", "b3", "join")}


async def test_a_join_waits_for_every_predecessor(flow: Flow):
    workflow = await flow.define(step("a"), step("b"), step("c", "a", "b"))
    run = await flow.start(workflow)
    a_job, b_job = flow.dispatcher.take()
    gate = flow.executor.gate()
    flow.executor.script("b", Block(gate))
    b_worker = flow.background(flow.execute(b_job, worker="worker-2"))
    await flow.executor.wait_started(1)

    await flow.execute(a_job)

    steps = await flow.steps_of(run)
    assert (steps["c"].status, steps["c"].remaining) == (S.WAITING, 1)
    assert flow.dispatcher.take() == []
    gate.set()
    await b_worker
    [c_job] = flow.dispatcher.take()
    assert (await flow.job_run(c_job)).step_key == "c"
    await flow.execute(c_job)
    assert (await flow.reread(run)).status is WorkflowRunStatus.SUCCEEDED


async def test_a_halting_failure_fails_the_run_and_cancels_every_unfinished_step_and_its_job_run(flow: Flow):
    workflow = await flow.define(step("a"), step("slow"), step("after_a", "a"), step("last", "slow", "after_a"))
    run = await flow.start(workflow)
    a_job, slow_job = flow.dispatcher.take()
    gate = flow.executor.gate()
    flow.executor.script("slow", Block(gate))
    flow.executor.script("a", boom("ledger down", retryable=False))
    slow_worker = flow.background(flow.execute(slow_job, worker="worker-2"))
    await flow.executor.wait_started(1)

    await flow.execute(a_job)

    stored = await flow.reread(run)
    assert stored.status is WorkflowRunStatus.FAILED
    assert stored.error == "step 'a' failed: ledger down"
    assert await flow.statuses(run) == {"a": "failed", "slow": "canceled", "after_a": "canceled", "last": "canceled"}
    assert (await flow.job_run(slow_job)).status is RunStatus.CANCELED  # canceled right after the commit
    await slow_worker  # the worker stops it at its next heartbeat; nothing changes
    assert [c.cancelled for c in flow.executor.calls if c.key == "slow"] == [True]
    assert await flow.statuses(run) == {"a": "failed", "slow": "canceled", "after_a": "canceled", "last": "canceled"}
    assert flow.dispatcher.take() == []


async def test_a_skip_failure_skips_its_dependents_transitively_and_the_run_goes_on(flow: Flow):
    workflow = await flow.define(
        step("a", on_failure="skip"), step("b", "a"), step("c", "b"), step("free"), step("end", "c", "free"),
    )
    flow.executor.script("a", boom())
    run = await flow.start(workflow)

    await flow.work()

    steps = await flow.steps_of(run)
    assert {k: str(s.status) for k, s in steps.items()} == {
        "a": "failed", "b": "skipped", "c": "skipped", "free": "succeeded", "end": "skipped",
    }
    assert steps["c"].skip_cause is SkipCause.UPSTREAM_FAILED
    assert (await flow.reread(run)).status is WorkflowRunStatus.SUCCEEDED
    assert sorted(flow.executor.keys()) == ["a", "free"]


async def test_a_continue_failure_lets_its_dependents_run_with_a_null_output(flow: Flow):
    workflow = await flow.define(
        step("a", on_failure="continue"),
        step("b", "a", inputs={"got": "$.steps.a.output", "status": "$.steps.a.status"}),
    )
    flow.executor.script("a", boom("flaky"))
    run = await flow.start(workflow)

    await flow.work()

    assert await flow.statuses(run) == {"a": "failed", "b": "succeeded"}
    assert flow.executor.params_of("b") == [{"got": None, "status": "failed"}]
    assert (await flow.reread(run)).status is WorkflowRunStatus.SUCCEEDED


async def test_conditional_branches_run_the_one_taken_and_a_join_after_them(flow: Flow):
    workflow = await flow.define(
        step("check"),
        step("big", "check", when="steps.check.output.total > 100"),
        step("small", "check", when="steps.check.output.total <= 100"),
        step("report", "big", "small", inputs={"big": "$.steps.big.status", "small": "$.steps.small.status"}),
    )
    flow.executor.script("check", ok({"total": 150}))
    run = await flow.start(workflow)

    await flow.work()

    steps = await flow.steps_of(run)
    assert {k: str(s.status) for k, s in steps.items()} == {
        "check": "succeeded", "big": "succeeded", "small": "skipped", "report": "succeeded",
    }
    assert steps["small"].skip_cause is SkipCause.CONDITION
    assert flow.executor.params_of("report") == [{"big": "succeeded", "small": "skipped"}]


async def test_when_no_branch_is_taken_the_join_is_skipped_too(flow: Flow):
    workflow = await flow.define(
        step("check"), step("big", "check", when="steps.check.output.total > 100"), step("report", "big"),
    )
    flow.executor.script("check", ok({"total": 5}))
    run = await flow.start(workflow)

    await flow.work()

    steps = await flow.steps_of(run)
    assert (steps["big"].skip_cause, steps["report"].skip_cause) == (SkipCause.CONDITION, SkipCause.NO_BRANCH)
    assert (await flow.reread(run)).status is WorkflowRunStatus.SUCCEEDED


async def test_a_failing_step_is_retried_by_its_policy_with_backoff_and_the_run_follows_each_attempt(flow: Flow):
    workflow = await flow.define(
        step("fetch", retry={"max_attempts": 3, "backoff_s": 2, "jitter": False}),
        step("after", "fetch", inputs={"n": "$.steps.fetch.output.n"}),
    )
    flow.executor.script("fetch", boom("down"), boom("still down"), ok({"n": 7}))
    run = await flow.start(workflow)
    [first] = flow.dispatcher.take()

    await flow.execute(first)
    retry_step = (await flow.steps_of(run))["fetch"]
    [_, second] = await flow.job_runs(run, "fetch")
    assert (retry_step.status, retry_step.attempt, retry_step.job_run_id) == (S.RUNNING, 2, second.id)
    assert (second.source, second.retry_of, second.scheduled_at) == (RunSource.RETRY, first, flow.clock.now() + timedelta(seconds=2))

    for backoff in (2, 4):  # the retry is due after its backoff: the scheduler dispatches it
        flow.clock.advance(timedelta(seconds=backoff))
        await flow.tick()
        await flow.execute(*flow.dispatcher.take())

    await flow.work()
    jobs = await flow.job_runs(run, "fetch")
    assert [(j.attempt, j.status) for j in jobs] == [(1, RunStatus.FAILED), (2, RunStatus.FAILED), (3, RunStatus.SUCCEEDED)]
    state = (await flow.steps_of(run))["fetch"]
    assert (state.status, state.attempt, state.job_run_id, state.output) == (S.SUCCEEDED, 3, jobs[-1].id, {"n": 7})
    assert flow.executor.params_of("after") == [{"n": 7}]
    assert (await flow.reread(run)).status is WorkflowRunStatus.SUCCEEDED
    assert not any(j.dead_lettered for j in jobs)


async def test_a_step_that_uses_its_last_attempt_fails_and_its_run_dead_letters(flow: Flow):
    workflow = await flow.define(step("fetch", retry={"max_attempts": 2, "backoff_s": 1, "jitter": False}))
    flow.executor.script("fetch", boom(), boom("again"))
    run = await flow.start(workflow)
    await flow.work()
    flow.clock.advance(timedelta(seconds=1))
    await flow.tick()
    await flow.work()

    jobs = await flow.job_runs(run)
    assert [(j.attempt, j.dead_lettered) for j in jobs] == [(1, False), (2, True)]
    assert (await flow.reread(run)).status is WorkflowRunStatus.FAILED
    assert (await flow.steps_of(run))["fetch"].error == "again"


async def test_inputs_read_the_trigger_payload_and_earlier_outputs_and_are_kept_on_the_step(flow: Flow):
    workflow = await flow.define(
        step("fetch", inputs={"customer": "$.trigger.customer_id", "day": "yesterday", "price": "$$5"}),
        step("bill", "fetch", inputs={"rows": "$.steps.fetch.output.items", "first": "$.steps.fetch.output.items[0]"}),
    )
    flow.executor.script("fetch", ok({"items": [{"id": 1}, {"id": 2}]}))
    run = await flow.start(workflow, {"customer_id": "c-7"})

    await flow.work()

    assert flow.executor.params_of("fetch") == [{"customer": "c-7", "day": "yesterday", "price": "$5"}]
    assert flow.executor.params_of("bill") == [{"rows": [{"id": 1}, {"id": 2}], "first": {"id": 1}}]
    steps = await flow.steps_of(run)
    assert steps["bill"].input == {"rows": [{"id": 1}, {"id": 2}], "first": {"id": 1}}
    assert steps["fetch"].output == {"items": [{"id": 1}, {"id": 2}]}
    [job] = await flow.job_runs(run, "fetch")
    assert job.params == {"customer": "c-7", "day": "yesterday", "price": "$5"}


async def test_an_input_that_cannot_be_read_fails_its_step_before_any_job_runs(flow: Flow):
    workflow = await flow.define(step("fetch", inputs={"customer": "$.trigger.customer_id"}), step("bill", "fetch"))

    run = await flow.start(workflow, {})

    assert run.status is WorkflowRunStatus.FAILED
    assert await flow.statuses(run) == {"fetch": "failed", "bill": "canceled"}
    assert "customer_id" in (await flow.steps_of(run))["fetch"].error
    assert flow.dispatcher.take() == [] and await flow.job_runs(run) == []


async def test_a_task_step_runs_a_snapshot_of_its_target_timeout_and_retry(flow: Flow):
    workflow = await flow.define(
        step("fetch", target={"kind": "http", "method": "POST", "url": "https://api.example.com/x"},
             timeout_s=12, retry={"max_attempts": 4, "backoff_s": 3}),
    )
    run = await flow.start(workflow)

    [job] = await flow.job_runs(run)

    assert job.endpoint_id is None
    assert (job.task.name, job.task.target.url, job.task.timeout, job.task.retry.max_attempts) == (
        f"{workflow.slug}.fetch", "https://api.example.com/x", timedelta(seconds=12), 4,
    )


async def test_an_endpoint_step_runs_its_endpoint_with_the_inputs_as_params(flow: Flow):
    endpoint = await flow.endpoint(name="ledger-sync", priority=7, retry={"max_attempts": 2, "backoff_s": 1, "jitter": False})
    workflow = await flow.define(
        {"key": "sync", "target": {"kind": "endpoint", "endpoint_id": endpoint.id}, "inputs": {"full": True}},
        step("after", "sync"),
    )
    flow.executor.script("ledger-sync", boom(), ok({"synced": 3}))
    run = await flow.start(workflow)
    [item] = flow.dispatcher.items
    assert item.priority == 7

    await flow.work()
    flow.clock.advance(timedelta(seconds=1))
    await flow.tick()
    await flow.work()

    jobs = await flow.job_runs(run, "sync")
    assert [(j.endpoint_id, j.params, j.status) for j in jobs] == [
        (endpoint.id, {"full": True}, RunStatus.FAILED), (endpoint.id, {"full": True}, RunStatus.SUCCEEDED),
    ]
    assert (await flow.steps_of(run))["sync"].output == {"synced": 3}
    assert (await flow.reread(run)).status is WorkflowRunStatus.SUCCEEDED


async def test_a_reconciler_that_expires_a_steps_job_run_advances_the_workflow(flow: Flow):
    workflow = await flow.define(step("slow", retry={"max_attempts": 2, "backoff_s": 1, "jitter": False}), step("next", "slow"))
    run = await flow.start(workflow)
    [job] = flow.dispatcher.take()
    async with flow.store.unit_of_work() as uow:  # a worker took it and died
        await uow.runs.start([job], at=flow.clock.now(), worker="worker-dead")
        await uow.commit()

    flow.clock.advance(timedelta(seconds=90))
    report = await flow.scheduler.reconcile(heartbeat_timeout=timedelta(seconds=30), recorder=flow.recorder)
    assert (report.expired, report.retried) == (1, 1)
    state = (await flow.steps_of(run))["slow"]
    assert (state.status, state.attempt) == (S.RUNNING, 2)

    flow.clock.advance(timedelta(seconds=1))
    await flow.tick()
    await flow.work()

    jobs = await flow.job_runs(run, "slow")
    assert [j.status for j in jobs] == [RunStatus.EXPIRED, RunStatus.SUCCEEDED]
    assert await flow.statuses(run) == {"slow": "succeeded", "next": "succeeded"}


async def test_an_expired_step_without_attempts_left_fails_the_run_through_the_reconciler(flow: Flow):
    workflow = await flow.define(step("slow"), step("next", "slow"))
    run = await flow.start(workflow)
    [job] = flow.dispatcher.take()
    async with flow.store.unit_of_work() as uow:
        await uow.runs.start([job], at=flow.clock.now(), worker="worker-dead")
        await uow.commit()

    flow.clock.advance(timedelta(seconds=90))
    await flow.scheduler.reconcile(heartbeat_timeout=timedelta(seconds=30), recorder=flow.recorder)

    stored = await flow.reread(run)
    assert stored.status is WorkflowRunStatus.FAILED
    assert "expired" in stored.error
    assert await flow.statuses(run) == {"slow": "failed", "next": "canceled"}


async def test_an_operator_canceling_a_steps_job_run_fails_the_step(flow: Flow):
    workflow = await flow.define(step("a", on_failure="continue"), step("b", "a"))
    run = await flow.start(workflow)
    [job] = flow.dispatcher.take()

    canceled = await flow.runs.cancel(TENANT, job)

    assert canceled.status is RunStatus.CANCELED
    state = (await flow.steps_of(run))["a"]
    assert (state.status, state.error) == (S.FAILED, "canceled by an operator")
    await flow.work()
    assert (await flow.reread(run)).status is WorkflowRunStatus.SUCCEEDED
    assert flow.executor.keys() == ["b"]


async def test_a_duplicated_message_runs_a_step_once(flow: Flow):
    workflow = await flow.define(step("a"), step("b", "a"))
    run = await flow.start(workflow)
    [job] = flow.dispatcher.take()

    await flow.execute(job)
    await flow.execute(job, worker="worker-2")
    await flow.work()

    assert flow.executor.keys() == ["a", "b"]
    assert (await flow.reread(run)).status is WorkflowRunStatus.SUCCEEDED


async def test_runs_of_one_worker_batch_from_one_workflow_advance_it_together(flow: Flow):
    workflow = await flow.define(*(step(f"s{i}") for i in range(6)), step("join", *(f"s{i}" for i in range(6))))
    run = await flow.start(workflow)
    ids = flow.dispatcher.take()
    assert len(ids) == 6

    await flow.execute(*ids)

    [join] = flow.dispatcher.take()
    assert (await flow.job_run(join)).step_key == "join"
    await flow.execute(join)
    assert (await flow.reread(run)).status is WorkflowRunStatus.SUCCEEDED


class StepReads:
    """A unit-of-work factory that records how many step states each read of its units of work returned."""

    def __init__(self, store: object) -> None:
        self._store = store
        self.counts: list[int] = []

    def __call__(self, *, read_only: bool = False) -> _ReadingUnitOfWork:
        return _ReadingUnitOfWork(self._store.unit_of_work(read_only=read_only), self.counts)  # type: ignore[attr-defined]


class _ReadingUnitOfWork:
    def __init__(self, inner: Any, counts: list[int]) -> None:
        self._inner = inner
        self._counts = counts

    async def __aenter__(self) -> Any:
        uow = await self._inner.__aenter__()
        uow.workflow_steps = _ReadingSteps(uow.workflow_steps, self._counts)
        return uow

    async def __aexit__(self, *exc: Any) -> Any:
        return await self._inner.__aexit__(*exc)


class _ReadingSteps:
    def __init__(self, inner: Any, counts: list[int]) -> None:
        self._inner = inner
        self._counts = counts

    async def list_for_run(self, run_id: Any, **options: Any) -> Any:
        found = await self._inner.list_for_run(run_id, **options)
        self._counts.append(len(found))
        return found

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


async def test_a_finished_branch_reads_its_step_and_the_join_not_every_branch(flow: Flow):
    # Given a 30-way fan-out and a join, the branches' job runs executed one per worker call
    workflow = await flow.define(*(step(f"b{i:02d}") for i in range(30)), step("join", *(f"b{i:02d}" for i in range(30))))
    run = await flow.start(workflow)
    reads = StepReads(flow.store)
    flow.execution = flow.execution_service(uow=reads)
    *first, last = flow.dispatcher.take()

    for job in first:
        await flow.execute(job)

    # Then each outcome read two step states: its own and the join's
    assert reads.counts == [2] * 29
    # When the last branch ends, the join (now free to start) reads its predecessors: the whole run, once
    reads.counts.clear()
    await flow.execute(last)
    assert reads.counts == [2, 31]
    [join] = flow.dispatcher.take()
    reads.counts.clear()
    await flow.execute(join)
    # and the join, a sink, ends the run after reading every step once
    assert reads.counts == [1, 31]
    assert (await flow.reread(run)).status is WorkflowRunStatus.SUCCEEDED
