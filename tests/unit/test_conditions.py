"""Conditions and input references (``domain.conditions``): a whitelist, never eval."""

from __future__ import annotations

import ast
import builtins
import contextlib
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from domain.conditions import (
    MAX_SOURCE,
    ExpressionError,
    escape_literal,
    is_reference,
    literal,
    parse_condition,
    parse_reference,
)
from domain.errors import ValidationFailed

CONTEXT = {
    "trigger": {"region": "eu", "n": 3, "customer-id": "c-1", "tags": ["a", "b"], "ratio": 0.5},
    "steps": {
        "fetch": {"status": "succeeded", "output": {"count": 2, "items": [{"id": 7}, {"id": 9}]}, "error": None},
        "probe": {"status": "failed", "output": None, "error": "boom"},
    },
}


def holds(source: str) -> bool:
    return parse_condition(source).evaluate(CONTEXT)


def refusal(source: str) -> str:
    with pytest.raises(ValidationFailed) as caught:
        parse_condition(source)
    [error] = caught.value.errors
    assert error.path == "when"
    return error.message


@pytest.mark.parametrize(
    "source",
    [
        "steps.fetch.output.count > 1 and trigger.region == 'eu'",
        "steps['fetch']['output']['count'] == 2",
        "steps.fetch.output.items[0].id == 7",
        "steps.fetch.output.items[-1]['id'] == 9",
        "len(steps.fetch.output.items) == 2",
        "trigger['customer-id'] in ['c-1', 'c-2']",
        "'a' in trigger.tags and 'z' not in trigger.tags",
        "not (trigger.n % 2 == 0)",
        "trigger.n * 2 - 1 == 5 and trigger.n / 2 == 1.5",
        "-trigger.n < 0 < +trigger.n",
        "1 < trigger.n <= 3",
        "steps.probe.status == 'failed' and steps.probe.output is None",
        "steps.probe.error == 'boom'",
        "true and not false and null is None",
        "True and None is None",
        "trigger.ratio >= 0.5",
        "(1, 2) == (1, 2)",
        "steps.probe.status == 'succeeded' and steps.probe.output.count > 0 or trigger.n == 3",
    ],
)
def test_an_allowed_condition_holds_against_the_context(source):
    assert holds(source) is True


@pytest.mark.parametrize(
    "source",
    ["trigger.region == 'us'", "len(trigger.tags) > 2", "steps.fetch.output.count == 0 or trigger.n < 0", "0"],
)
def test_a_false_condition_is_false(source):
    assert holds(source) is False


def test_a_condition_names_the_upstream_steps_it_reads():
    condition = parse_condition("steps.fetch.output.count > 0 and steps['probe'].status == 'failed' or trigger.x")
    assert condition.steps == frozenset({"fetch", "probe"})
    assert parse_condition("trigger.region == 'eu'").steps == frozenset()


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("__import__('os').system('true')", "calling __import__('os').system is not allowed; the only function is len(...)"),
        ("__import__('os')", "calling __import__ is not allowed; the only function is len(...)"),
        ("open('/etc/passwd')", "calling open is not allowed; the only function is len(...)"),
        ("trigger.get('x')", "calling trigger.get is not allowed; the only function is len(...)"),
        ("len(trigger, trigger)", "len takes exactly one argument"),
        ("len(x=1)", "len takes exactly one argument"),
        ("len", "len must be called, as in len(...)"),
        ("lambda: 1", "lambdas are not allowed"),
        ("[x for x in trigger.tags]", "comprehensions are not allowed"),
        ("trigger.__class__", "names starting with '_' are not allowed (__class__)"),
        ("trigger['__class__']", "keys starting with '_' are not allowed ('__class__')"),
        ("().__class__.__bases__", "names starting with '_' are not allowed (__class__)"),
        ("os.system", "unknown name 'os'; use trigger or steps"),
        ("steps", "steps must be followed by a step key, as in steps.fetch.output"),
        ("steps[trigger.key].output", 'steps must be followed by a literal step key, as in steps.fetch or steps["fetch"]'),
        ("steps.fetch.outputs", "a step offers output, status, error, not '.outputs'"),
        ("2 ** 10", "operator ** is not allowed"),
        ("trigger.n // 2", "operator // is not allowed"),
        ("~trigger.n", "operator ~ is not allowed"),
        ("1 if trigger.n else 2", "if-expressions are not allowed"),
        ("trigger.tags[0:1]", "slices are not allowed"),
        ("{'a': 1}", "dict literals are not allowed"),
        ("f'{trigger}'", "f-strings are not allowed"),
        ("(y := 1)", "the := operator is not allowed"),
        ("b'x' == trigger.n", "constant b'x' is not allowed"),
        ("trigger ==", "is not a valid expression: invalid syntax"),
        ("   ", "must be a non-empty expression"),
        ("x" * (MAX_SOURCE + 1), f"must be at most {MAX_SOURCE} characters"),
        ("[" + ", ".join(["1"] * 400) + "]", "is too long: at most 300 terms"),
        ("-" * 60 + "1", "is too deeply nested: at most 40 levels"),
    ],
)
def test_anything_outside_the_whitelist_is_refused_when_defined(source, message):
    assert refusal(source) == message


def test_a_condition_that_is_not_a_string_is_refused():
    with pytest.raises(ValidationFailed, match="must be a non-empty expression"):
        parse_condition(42)


def test_a_refusal_can_carry_the_field_path_of_the_caller():
    with pytest.raises(ValidationFailed) as caught:
        parse_condition("open()", path="steps[2].when")
    assert caught.value.errors[0].path == "steps[2].when"


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("trigger.missing == 1", "trigger.missing: has no key 'missing'"),
        ("steps.fetch.output.items[5].id", "steps.fetch.output.items[5]: index 5 is out of range (length 2)"),
        ("steps.probe.output.count > 0", "steps.probe.output.count: cannot read 'count' of null"),
        ("steps.later.status == 'succeeded'", "steps.later: has no key 'later'"),
        ("trigger.n / 0 > 1", "trigger.n / 0: division by zero"),
        ("trigger.region + 1", "trigger.region + 1: arithmetic needs numbers, not a string and a number"),
        ("trigger.region < 1", "trigger.region < 1: cannot compare a string and a number"),
        ("len(trigger.n) > 0", "len(trigger.n): len needs a string, list or object, not a number"),
        ("trigger.tags['a']", "trigger.tags['a']: a list is indexed by a whole number, not a string"),
        ("-trigger.region", "-trigger.region: needs a number, not a string"),
        ("1 in trigger.region", "1 in trigger.region: cannot compare a number and a string"),
    ],
)
def test_evaluation_errors_say_what_is_missing_or_wrong(source, message):
    with pytest.raises(ExpressionError) as caught:
        holds(source)
    assert str(caught.value) == message


def test_and_and_or_short_circuit_so_a_guard_protects_a_missing_output():
    assert holds("steps.probe.status == 'succeeded' and steps.probe.output.count > 0") is False


def test_the_evaluator_module_never_calls_eval_exec_compile_getattr_or_import():
    source = Path(__file__).resolve().parents[2].joinpath("domain", "conditions.py").read_text()
    called = {
        node.func.id
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
    }
    assert not called & {"eval", "exec", "compile", "getattr", "__import__", "open", "setattr", "vars", "globals"}


# -- random input never executes anything -------------------------------------------

_TOKENS = st.sampled_from(
    [
        "trigger", "steps", "fetch", "output", "status", "len", "__import__", "__class__", "__subclasses__",
        "__globals__", "__builtins__", "open", "eval", "exec", "os", "system", "lambda", "x", "for", "in", "not",
        "and", "or", "if", "else", "is", "None", "True", "'os'", "'rm -rf'", "0", "1", "-1", "2.5", "1e308",
        "(", ")", "[", "]", "{", "}", ".", ",", ":", "==", "!=", "<", ">=", "+", "-", "*", "**", "/", "//", "%",
        "~", "@", "|", "&", ":=", " ", "'", '"', "\\", "#", "\n", "yield", "await", "f'", "b'", "...",
    ]
)
_GARBAGE = st.one_of(st.lists(_TOKENS, max_size=40).map("".join), st.text(max_size=200))


@contextlib.contextmanager
def no_code_may_run():
    """Make the doors to running code raise while the evaluator works (a static test above
    shows it never calls getattr or setattr, which Python itself needs)."""
    doors = ("__import__", "eval", "exec", "compile", "open", "breakpoint", "input")
    table = vars(builtins)
    saved = {name: table[name] for name in doors}

    def shut(*args, **kwargs):
        raise AssertionError("the evaluator tried to run code")

    table.update(dict.fromkeys(doors, shut))
    try:
        yield
    finally:
        table.update(saved)


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(source=_GARBAGE)
def test_random_text_is_either_refused_or_evaluated_without_running_code(source):
    try:
        condition = parse_condition(source)
    except ValidationFailed as exc:
        assert exc.errors and exc.errors[0].path == "when"
        return
    with no_code_may_run():
        try:
            result = condition.evaluate(CONTEXT)
        except ExpressionError:
            return
    assert isinstance(result, bool)


_NUMBERS = st.integers(min_value=-1000, max_value=1000)


def _expressions():
    """Boolean expressions over numbers (booleans are not numbers to the evaluator, so
    arithmetic never takes a comparison's result)."""
    leaves = st.one_of(_NUMBERS.map(str), st.sampled_from(["trigger.n", "steps.fetch.output.count"]))
    numbers = st.recursive(
        leaves,
        lambda inner: st.one_of(
            st.tuples(inner, st.sampled_from(["+", "-", "*", "%"]), inner).map(lambda t: f"({t[0]} {t[1]} {t[2]})"),
            inner.map(lambda e: f"(-{e})"),
        ),
        max_leaves=6,
    )
    comparisons = st.tuples(numbers, st.sampled_from(["==", "!=", "<", "<=", ">", ">="]), numbers).map(
        lambda t: f"({t[0]} {t[1]} {t[2]})"
    )
    return st.recursive(
        comparisons,
        lambda inner: st.one_of(
            st.tuples(inner, st.sampled_from(["and", "or"]), inner).map(lambda t: f"({t[0]} {t[1]} {t[2]})"),
            inner.map(lambda e: f"(not {e})"),
        ),
        max_leaves=4,
    )


@given(source=_expressions())
def test_allowed_expressions_mean_what_python_means(source):
    # The test (not the product) may use eval: on a generated, whitelisted expression.
    names = {"trigger": _Dotted(CONTEXT["trigger"]), "steps": _Dotted(CONTEXT["steps"])}
    try:
        expected = bool(eval(source, {"__builtins__": {}}, names))  # noqa: S307
    except (ZeroDivisionError, TypeError):
        with pytest.raises(ExpressionError):
            parse_condition(source).evaluate(CONTEXT)
        return
    try:
        assert parse_condition(source).evaluate(CONTEXT) is expected
    except ExpressionError:
        pytest.fail(f"{source} raised, Python answered {expected}")


class _Dotted:
    def __init__(self, data):
        self._data = data

    def __getattr__(self, name):
        value = self._data[name]
        return _Dotted(value) if isinstance(value, dict) else value


# -- references ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "root", "step", "path", "value"),
    [
        ("$.trigger", "trigger", None, (), CONTEXT["trigger"]),
        ("$.trigger.region", "trigger", None, ("region",), "eu"),
        ("$.trigger.customer-id", "trigger", None, ("customer-id",), "c-1"),
        ('$.trigger["customer-id"]', "trigger", None, ("customer-id",), "c-1"),
        ("$.steps.fetch.output.items[1].id", "steps", "fetch", ("output", "items", 1, "id"), 9),
        ("$.steps.fetch.status", "steps", "fetch", ("status",), "succeeded"),
        ("$.steps.probe.error", "steps", "probe", ("error",), "boom"),
    ],
)
def test_a_reference_reads_a_path_of_the_context(source, root, step, path, value):
    reference = parse_reference(source)
    assert (reference.root, reference.step, reference.path) == (root, step, path)
    assert reference.resolve(CONTEXT) == value


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("$.foo", "'$.foo' must start with $.trigger or $.steps"),
        ("$.steps.fetch", "'$.steps.fetch' must read a step's output, status or error, as in $.steps.fetch.output"),
        ("$.steps.fetch.result", "'$.steps.fetch.result' must read a step's output, status or error, as in $.steps.fetch.output"),
        ("$.trigger..x", "'$.trigger..x' is not a reference: expected .name, [index] or [\"key\"] at position 9"),
        ("$.trigger[x]", "'$.trigger[x]' is not a reference: expected .name, [index] or [\"key\"] at position 9"),
    ],
)
def test_a_malformed_reference_is_refused_with_its_path(source, message):
    with pytest.raises(ValidationFailed) as caught:
        parse_reference(source, path="inputs.items")
    assert [(e.path, e.message) for e in caught.value.errors] == [("inputs.items", message)]


def test_a_reference_to_a_missing_value_raises_a_clear_error():
    with pytest.raises(ExpressionError, match=r"^\$\.steps\.fetch\.output\.nope: has no key 'nope'$"):
        parse_reference("$.steps.fetch.output.nope").resolve(CONTEXT)
    with pytest.raises(ExpressionError, match="step 'later' has not finished"):
        parse_reference("$.steps.later.output").resolve(CONTEXT)


@pytest.mark.parametrize(
    ("value", "reference"),
    [("$.trigger", True), ("$[0]", True), ("$$.trigger", False), ("$5", False), ("plain", False), (5, False)],
)
def test_only_strings_starting_with_dollar_dot_are_references(value, reference):
    assert is_reference(value) is reference


@given(value=st.one_of(st.text(max_size=20), st.integers(), st.none()))
def test_escaping_a_literal_keeps_its_value_and_never_makes_a_reference(value):
    escaped = escape_literal(value)
    assert not is_reference(escaped)
    assert literal(escaped) == value
