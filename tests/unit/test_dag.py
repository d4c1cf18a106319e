"""DAG rules (``domain.dag``): every problem named with its path; order, layers, readiness."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.dag import Node, ancestors, find_cycles, graph_errors, layers, ready, successors, topological_order, validate_graph
from domain.errors import ValidationFailed


def problems(*nodes: Node | None) -> list[tuple[str, str]]:
    return [(e.path, e.message) for e in graph_errors(list(nodes))]


def test_a_well_formed_graph_has_no_problems():
    assert problems(
        Node(key="fetch"),
        Node(key="parse", depends_on=["fetch"], references=[("inputs.raw", "fetch")]),
        Node(key="notify", depends_on=["parse"], references=[("when", "fetch"), ("inputs.n", "parse")]),
    ) == []


def test_a_duplicate_key_names_both_places():
    assert problems(Node(key="a"), Node(key="b"), Node(key="a")) == [("steps[2].key", "duplicate key 'a' (also steps[0])")]


def test_an_unknown_dependency_names_its_position():
    assert problems(Node(key="a"), Node(key="b", depends_on=["a", "fech"])) == [
        ("steps[1].depends_on[1]", "unknown step 'fech'")
    ]


def test_a_step_cannot_depend_on_itself():
    assert problems(Node(key="a", depends_on=["a"])) == [("steps[0].depends_on[0]", "a step cannot depend on itself")]


def test_a_dependency_listed_twice_is_named():
    assert problems(Node(key="a"), Node(key="b", depends_on=["a", "a"])) == [
        ("steps[1].depends_on[1]", "'a' is listed twice")
    ]


def test_a_cycle_is_listed_from_its_first_declared_step():
    assert problems(
        Node(key="start"),
        Node(key="a", depends_on=["c"]),
        Node(key="b", depends_on=["a"]),
        Node(key="c", depends_on=["b", "start"]),
    ) == [("steps[1].depends_on", "forms a cycle: a -> c -> b -> a (each depends on the next)")]


def test_each_separate_cycle_is_reported_once():
    found = problems(
        Node(key="a", depends_on=["b"]), Node(key="b", depends_on=["a"]),
        Node(key="c", depends_on=["d"]), Node(key="d", depends_on=["c"]),
    )
    assert found == [
        ("steps[0].depends_on", "forms a cycle: a -> b -> a (each depends on the next)"),
        ("steps[2].depends_on", "forms a cycle: c -> d -> c (each depends on the next)"),
    ]


def test_a_reference_to_a_step_that_is_not_upstream_is_refused():
    found = problems(
        Node(key="fetch"),
        Node(key="side"),
        Node(key="parse", depends_on=["fetch"], references=[("when", "side"), ("inputs.me", "parse"), ("inputs.x", "ghost")]),
    )
    assert found == [
        ("steps[2].when", "reads step 'side', which is not upstream of 'parse'; add it to depends_on (directly or through another step)"),
        ("steps[2].inputs.me", "reads step 'parse', which is this step itself"),
        ("steps[2].inputs.x", "reads unknown step 'ghost'"),
    ]


def test_a_reference_to_a_transitive_ancestor_is_allowed():
    assert problems(
        Node(key="a"), Node(key="b", depends_on=["a"]), Node(key="c", depends_on=["b"], references=[("when", "a")])
    ) == []


def test_a_broken_step_keeps_the_indices_of_the_others():
    assert problems(Node(key="a"), None, Node(key="a")) == [("steps[2].key", "duplicate key 'a' (also steps[0])")]


def test_validate_graph_raises_with_every_problem():
    with pytest.raises(ValidationFailed) as caught:
        validate_graph([Node(key="a", depends_on=["a", "x"])])
    assert [e.path for e in caught.value.errors] == ["steps[0].depends_on[0]", "steps[0].depends_on[1]"]


GRAPH = {"fetch": [], "audit": [], "parse": ["fetch"], "store": ["parse", "audit"], "notify": ["store"], "ping": []}


def test_topological_order_prefers_the_declared_order_among_free_steps():
    assert topological_order(GRAPH) == ("fetch", "audit", "parse", "store", "notify", "ping")
    assert topological_order({"b": ["a"], "a": [], "c": []}) == ("a", "b", "c")


def test_layers_group_steps_by_their_deepest_dependency_in_declared_order():
    assert layers(GRAPH) == (("fetch", "audit", "ping"), ("parse",), ("store",), ("notify",))


def test_order_and_layers_refuse_a_cycle_or_an_unknown_step():
    with pytest.raises(ValidationFailed, match="forms a cycle: a -> b -> a"):
        topological_order({"a": ["b"], "b": ["a"]})
    with pytest.raises(ValidationFailed, match="depends on unknown step 'x'"):
        layers({"a": ["x"]})


def test_readiness_lists_unstarted_steps_whose_dependencies_have_all_finished():
    assert ready(GRAPH, finished=[]) == ("fetch", "audit", "ping")
    assert ready(GRAPH, finished=["fetch"], started=["audit"]) == ("parse", "ping")
    assert ready(GRAPH, finished=["fetch", "audit", "parse"]) == ("store", "ping")


def test_ancestors_and_successors():
    assert ancestors(GRAPH)["notify"] == frozenset({"store", "parse", "fetch", "audit"})
    assert successors(GRAPH)["parse"] == ("store",)
    assert successors(GRAPH)["notify"] == ()


@st.composite
def dags(draw, max_size=12):
    """Random DAGs: step i depends on a random subset of earlier steps, then declared shuffled."""
    size = draw(st.integers(min_value=1, max_value=max_size))
    keys = [f"s{i}" for i in range(size)]
    edges = {key: sorted(draw(st.sets(st.sampled_from(keys[:i])))) if i else [] for i, key in enumerate(keys)}
    order = draw(st.permutations(keys))
    return {key: edges[key] for key in order}


@given(graph=dags())
def test_a_topological_order_puts_every_step_after_its_dependencies(graph):
    order = topological_order(graph)
    assert sorted(order) == sorted(graph)
    position = {key: i for i, key in enumerate(order)}
    assert all(position[d] < position[k] for k, deps in graph.items() for d in deps)
    assert graph_errors([Node(key=k, depends_on=d) for k, d in graph.items()]) == []


@given(graph=dags())
def test_layers_hold_every_step_once_after_its_dependencies(graph):
    found = layers(graph)
    stage = {key: i for i, layer in enumerate(found) for key in layer}
    assert sorted(stage) == sorted(graph) and sum(map(len, found)) == len(graph)
    assert all(stage[d] < stage[k] for k, deps in graph.items() for d in deps)
    assert all(layer for layer in found)


@given(graph=dags(), data=st.data())
def test_adding_a_back_edge_is_reported_as_a_cycle(graph, data):
    order = topological_order(graph)
    candidates = [(k, d) for k, deps in graph.items() for d in deps]
    if not candidates:
        return
    key, dependency = data.draw(st.sampled_from(candidates))
    cyclic = {k: list(v) for k, v in graph.items()}
    cyclic[dependency].append(key)  # the dependency now depends on its dependent
    cycles = find_cycles(cyclic)
    assert cycles and any(key in cycle and dependency in cycle for cycle in cycles)
    for cycle in cycles:  # each listed cycle is real: every key depends on the next
        assert all(cycle[(i + 1) % len(cycle)] in cyclic[k] for i, k in enumerate(cycle))
    assert order  # the acyclic graph had an order
