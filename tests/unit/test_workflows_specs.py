"""Workflow definitions in the public vocabulary (``domain.workflow_specs``)."""

from __future__ import annotations

import copy
from datetime import timedelta

import pytest

from domain.errors import ValidationFailed
from domain.targets import HttpTarget
from domain.workflow_specs import build_workflow, steps_from, workflow_fields, workflow_spec
from domain.workflows import EndpointRef, OnFailure, PlannerKind, TriggerKind, Workflow
from tests.builders import T0, TENANT

DEFINITION = {
    "slug": "nightly-billing",
    "name": "Nightly billing",
    "description": "Fetch yesterday's invoices, parse them, store the totals and tell finance.",
    "planner": "deterministic",
    "steps": [
        {
            "key": "fetch",
            "description": "download yesterday's invoices",
            "target": {"kind": "endpoint", "endpoint_id": "0190a0a0-0000-7000-8000-000000000001"},
            "inputs": {"customer": "$.trigger.customer_id", "day": "yesterday"},
            "retry": {"max_attempts": 3, "backoff_s": 5, "backoff_max_s": 60, "jitter": False},
            "timeout_s": 120,
        },
        {
            "key": "parse",
            "description": "parse them",
            "target": {"kind": "python", "handler": "billing.parse", "params": {"strict": True}},
            "depends_on": ["fetch"],
            "when": "steps.fetch.output.count > 0",
            "inputs": {"items": "$.steps.fetch.output.items"},
            "on_failure": "skip",
        },
        {
            "key": "notify",
            "target": {"kind": "http", "method": "post", "url": "https://hooks.example.com/finance"},
            "depends_on": ["parse"],
            "on_failure": "continue",
        },
    ],
    "triggers": [
        {"kind": "cron", "cron": "0 2 * * *", "timezone": "Europe/Berlin"},
        {"kind": "event", "topic": "invoices.imported"},
        {"kind": "manual"},
    ],
}


def refusal(spec, **kwargs) -> list[tuple[str, str]]:
    with pytest.raises(ValidationFailed) as caught:
        workflow_fields(spec, **kwargs)
    return [(e.path, e.message) for e in caught.value.errors]


def test_a_definition_becomes_workflow_fields():
    fields = workflow_fields(DEFINITION)
    fetch, parse, notify = fields["steps"]
    assert fetch.target == EndpointRef(endpoint_id="0190a0a0-0000-7000-8000-000000000001")
    assert (fetch.retry.max_attempts, fetch.retry.backoff, fetch.retry.jitter) == (3, timedelta(seconds=5), False)
    assert fetch.timeout == timedelta(seconds=120) and fetch.on_failure is OnFailure.HALT
    assert (parse.depends_on, parse.when.source, parse.on_failure) == (("fetch",), "steps.fetch.output.count > 0", OnFailure.SKIP)
    assert isinstance(notify.target, HttpTarget) and notify.target.method == "POST"
    assert [t.kind for t in fields["triggers"]] == [TriggerKind.CRON, TriggerKind.EVENT, TriggerKind.MANUAL]
    assert fields["planner"] is PlannerKind.DETERMINISTIC
    workflow = build_workflow(lambda **f: Workflow.new(tenant_id=TENANT, now=T0, **f), fields)
    assert workflow.version == 1 and workflow.keys == ("fetch", "parse", "notify")


def test_a_workflow_written_back_reads_the_same():
    workflow = Workflow.new(tenant_id=TENANT, now=T0, **workflow_fields(DEFINITION))
    spec = workflow_spec(workflow)
    again = workflow_fields(spec)
    assert again["steps"] == workflow.steps and again["triggers"] == workflow.triggers
    assert spec["steps"][1]["when"] == "steps.fetch.output.count > 0"
    assert spec["steps"][0]["target"] == {"kind": "endpoint", "endpoint_id": "0190a0a0-0000-7000-8000-000000000001"}
    assert spec["triggers"][0] == {"kind": "cron", "cron": "0 2 * * *", "timezone": "Europe/Berlin"}
    assert workflow_spec(Workflow.new(tenant_id=TENANT, now=T0, **again)) == spec


def test_only_slug_name_and_steps_are_required():
    fields = workflow_fields({"slug": "w", "name": "W", "steps": [{"key": "a", "target": {"kind": "python", "handler": "h"}}]})
    assert set(fields) == {"slug", "name", "steps"}
    assert refusal({}) == [("slug", "is required"), ("name", "is required"), ("steps", "is required")]


def test_a_bad_definition_is_refused_whole_with_every_path():
    bad = {
        "slug": "Bad Slug", "name": "", "planner": "oracle", "colour": "red",
        "steps": [
            {"key": "a", "target": {"kind": "ftp"}, "depends_on": ["c"], "when": "open('x')"},
            {
                "key": "b", "target": {"kind": "python", "handler": "h"}, "depends_on": ["a", "b", "zz", 3],
                "inputs": {"x": "$.foo", "1x": 2}, "retry": {"backoff_s": -1}, "on_failure": "explode",
                "timeout_s": 999_999, "colour": "blue",
            },
            {"key": "c", "target": {"kind": "python", "handler": "h"}, "depends_on": ["b"]},
            {"key": "a", "target": {"kind": "python", "handler": "h"}},
            {"key": "Bad-Key", "target": {"kind": "endpoint"}},
            {"target": {"kind": "http"}},
            5,
        ],
        "triggers": [
            {"kind": "cron", "cron": "61 * * * *"}, {"kind": "event"}, {"kind": "manual", "topic": "x"},
            {"kind": "weekly"}, {"kind": "manual"}, {"kind": "manual", "note": 1},
        ],
    }
    assert refusal(bad) == [
        ("colour", "is not a known field"),
        ("planner", "must be 'deterministic' or 'ai'"),
        ("steps[0].target.kind", "must be 'endpoint', 'http' or 'python'"),
        ("steps[0].when", "calling open is not allowed; the only function is len(...) (step 'a')"),
        ("steps[1].colour", "is not a known field"),
        ("steps[1].depends_on[3]", "must be a step key (a string)"),
        ("steps[1].inputs.x", "'$.foo' must start with $.trigger or $.steps"),
        ("steps[1].inputs.1x", "input names are 1-64 letters, digits or '_', not starting with a digit"),
        ("steps[1].retry.backoff_s", "must be greater than zero"),
        ("steps[1].on_failure", "must be 'halt', 'skip' or 'continue'"),
        ("steps[1].timeout_s", "must be at most 24 hours"),
        ("steps[4].target.endpoint_id", "is required (an endpoint id)"),
        ("steps[4].key", "must be 1-63 lowercase letters, digits or '_', starting with a letter"),
        ("steps[5].key", "is required"),
        ("steps[5].target.url", "is required"),
        ("steps[6]", "must be an object"),
        ("steps[3].key", "duplicate key 'a' (also steps[0])"),
        ("steps[1].depends_on[1]", "a step cannot depend on itself"),
        ("steps[1].depends_on[2]", "unknown step 'zz'"),
        ("steps[0].depends_on", "forms a cycle: a -> c -> b -> a (each depends on the next)"),
        ("triggers[0].cron", "invalid expression '61 * * * *': Bad minute"),
        ("triggers[1].topic", "is required for an event trigger: 1-200 letters, digits or . _ : / * -"),
        ("triggers[2].topic", "is not a known field for a manual trigger"),
        ("triggers[3].kind", "must be 'manual', 'cron' or 'event'"),
        ("triggers[5].note", "is not a known field"),
        ("triggers[5]", "repeats triggers[4]"),
        ("slug", "must be 1-63 lowercase letters, digits or '-', starting and ending with a letter or digit"),
        ("name", "must not be empty"),
    ]


def test_a_reference_to_a_step_that_is_not_upstream_names_the_field():
    spec = copy.deepcopy(DEFINITION)
    spec["steps"][0]["when"] = "steps.notify.status == 'succeeded'"
    spec["steps"][1]["inputs"]["later"] = "$.steps.notify.output"
    assert refusal(spec) == [
        ("steps[0].when", "reads step 'notify', which is not upstream of 'fetch'; add it to depends_on (directly or through another step)"),
        ("steps[1].inputs.later", "reads step 'notify', which is not upstream of 'parse'; add it to depends_on (directly or through another step)"),
    ]


@pytest.mark.parametrize(
    ("steps", "expected"),
    [
        ("fetch", [("steps", "must be a list of steps")]),
        ([], [("steps", "must have at least one step")]),
        ([{"key": "a", "target": {"kind": "python", "handler": "h"}, "depends_on": "b"}], [("steps[0].depends_on", "must be a list of step keys")]),
        ([{"key": "a", "target": {"kind": "python", "handler": "h"}, "inputs": [1]}], [("steps[0].inputs", "must be an object")]),
        ([{"key": "a", "target": "h"}], [("steps[0].target", "must be an object")]),
        ([{"key": "a", "target": {"kind": "python", "handler": "h"}, "when": ""}], [("steps[0].when", "must be a non-empty expression (step 'a')")]),
        ([{"key": "a", "target": {"kind": "python", "handler": "h"}, "description": 5}], [("steps[0].description", "must be a string")]),
    ],
)
def test_step_list_problems(steps, expected):
    assert refusal({"slug": "w", "name": "W", "steps": steps}) == expected


def test_a_partial_definition_parses_only_what_it_gives():
    assert workflow_fields({"description": "new words"}, partial=True) == {"description": "new words"}
    assert refusal({"triggers": [{"kind": "manual"}, {"kind": "manual"}]}, partial=True) == [("triggers[1]", "repeats triggers[0]")]
    assert workflow_fields({"triggers": None}, partial=True) == {"triggers": ()}


def test_a_definition_must_be_an_object():
    with pytest.raises(ValidationFailed, match="must be an object"):
        workflow_fields([])  # type: ignore[arg-type]


def test_steps_from_parses_just_steps():
    assert [s.key for s in steps_from(DEFINITION["steps"])] == ["fetch", "parse", "notify"]
