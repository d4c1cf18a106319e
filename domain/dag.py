"""DAG rules for workflow steps: validation, topological order, layers and readiness.

A graph is given as :class:`Node` values in declared order; node ``i`` is
reported as ``steps[i]``, so every problem names the field to fix::

    steps[3].key                 duplicate key 'fetch' (also steps[0])
    steps[2].depends_on[0]       unknown step 'fech'
    steps[2].depends_on[1]       a step cannot depend on itself
    steps[2].depends_on[2]       'fetch' is listed twice
    steps[0].depends_on          forms a cycle: a -> b -> c -> a (each depends on the next)
    steps[2].when                reads step 'notify', which is not upstream of 'fetch'; add it to depends_on ...
    steps[2].inputs.items        reads unknown step 'ghost'

Everything here is pure and works on keys, so the planner's plan validation
and the workflow entity share it.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Mapping, Sequence

from attrs import field, frozen

from domain.errors import FieldError, ValidationFailed


def _tuple(value: Iterable[str]) -> tuple[str, ...]:
    return tuple(value)


@frozen(kw_only=True)
class Node:
    """One step as the graph sees it.

    ``references`` lists the upstream steps its ``when`` and ``inputs`` read, each
    with the path of the field that reads it, relative to the step (``when``,
    ``inputs.items``).
    """

    key: str
    depends_on: tuple[str, ...] = field(default=(), converter=_tuple)
    references: tuple[tuple[str, str], ...] = field(default=(), converter=tuple)


def graph_errors(nodes: Sequence[Node | None]) -> list[FieldError]:
    """Every problem of the graph, with paths. ``None`` stands for a step too broken to place
    (its own errors are reported elsewhere); it keeps the indices of the others."""
    errors: list[FieldError] = []
    first: dict[str, int] = {}
    for index, node in enumerate(nodes):
        if node is None:
            continue
        if node.key in first:
            errors.append(FieldError(f"steps[{index}].key", f"duplicate key {node.key!r} (also steps[{first[node.key]}])"))
        else:
            first[node.key] = index
    edges: dict[str, list[str]] = {key: [] for key in first}
    for index, node in enumerate(nodes):
        if node is None or first.get(node.key) != index:
            continue
        seen: set[str] = set()
        for position, dependency in enumerate(node.depends_on):
            path = f"steps[{index}].depends_on[{position}]"
            if dependency == node.key:
                errors.append(FieldError(path, "a step cannot depend on itself"))
            elif dependency in seen:
                errors.append(FieldError(path, f"{dependency!r} is listed twice"))
            elif dependency not in first:
                errors.append(FieldError(path, f"unknown step {dependency!r}"))
            else:
                edges[node.key].append(dependency)
            seen.add(dependency)
    cycles = find_cycles(edges)
    for cycle in cycles:
        index = first[cycle[0]]
        errors.append(FieldError(f"steps[{index}].depends_on", cycle_message(cycle)))
    if cycles:
        return errors  # upstream sets are meaningless in a cyclic graph
    upstream = ancestors(edges)
    for index, node in enumerate(nodes):
        if node is None or first.get(node.key) != index:
            continue
        for path, step in node.references:
            where = f"steps[{index}].{path}"
            if step == node.key:
                errors.append(FieldError(where, f"reads step {step!r}, which is this step itself"))
            elif step not in first:
                errors.append(FieldError(where, f"reads unknown step {step!r}"))
            elif step not in upstream[node.key]:
                errors.append(
                    FieldError(
                        where,
                        f"reads step {step!r}, which is not upstream of {node.key!r}; add it to depends_on "
                        "(directly or through another step)",
                    )
                )
    return errors


def cycle_message(cycle: Sequence[str]) -> str:
    """``forms a cycle: a -> b -> a (each depends on the next)``."""
    return "forms a cycle: " + " -> ".join([*cycle, cycle[0]]) + " (each depends on the next)"


def validate_graph(nodes: Sequence[Node | None]) -> None:
    """Raise ``ValidationFailed`` listing every problem of :func:`graph_errors`."""
    errors = graph_errors(nodes)
    if errors:
        raise ValidationFailed(errors)


def find_cycles(edges: Mapping[str, Sequence[str]]) -> list[list[str]]:
    """One cycle per strongly connected component that has one, each as keys in edge order,
    starting from the component's first key in declared order (``edges``' order).

    ``edges`` maps a key to the keys it depends on; a cycle ``[a, b, c]`` reads
    "a depends on b, b on c, c on a".
    """
    order = {key: position for position, key in enumerate(edges)}
    cycles: list[list[str]] = []
    for component in _components(edges):
        members = set(component)
        start = min(component, key=order.__getitem__)
        if len(component) == 1 and start not in edges[start]:
            continue
        cycles.append(_cycle_through(start, members, edges))
    cycles.sort(key=lambda cycle: order[cycle[0]])
    return cycles


def _components(edges: Mapping[str, Sequence[str]]) -> list[list[str]]:
    """Tarjan's strongly connected components, iteratively (no recursion limit)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    result: list[list[str]] = []
    counter = 0
    for root in edges:
        if root in index:
            continue
        work: list[tuple[str, int]] = [(root, 0)]
        while work:
            key, child = work.pop()
            if child == 0:
                index[key] = low[key] = counter
                counter += 1
                stack.append(key)
                on_stack.add(key)
            targets = edges.get(key, ())
            descended = False
            while child < len(targets):
                target = targets[child]
                child += 1
                if target not in index:
                    work.append((key, child))
                    work.append((target, 0))
                    descended = True
                    break
                if target in on_stack:
                    low[key] = min(low[key], index[target])
            if descended:
                continue
            if low[key] == index[key]:
                component: list[str] = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == key:
                        break
                result.append(component)
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[key])
    return result


def _cycle_through(start: str, members: set[str], edges: Mapping[str, Sequence[str]]) -> list[str]:
    """A shortest cycle from ``start`` back to itself inside one component (breadth first)."""
    parents: dict[str, str] = {}
    frontier = [start]
    while frontier:
        following: list[str] = []
        for key in frontier:
            for target in edges[key]:
                if target not in members:
                    continue
                if target == start:
                    path = [key]
                    while path[-1] != start:
                        path.append(parents[path[-1]])
                    return path[::-1]
                if target not in parents:
                    parents[target] = key
                    following.append(target)
        frontier = following
    raise AssertionError("a strongly connected component always has a cycle")  # pragma: no cover


def ancestors(edges: Mapping[str, Sequence[str]]) -> dict[str, frozenset[str]]:
    """Every key's transitive dependencies; ``edges`` must be acyclic."""
    result: dict[str, frozenset[str]] = {}
    for key in topological_order(edges):
        found: set[str] = set()
        for dependency in edges[key]:
            found.add(dependency)
            found |= result[dependency]
        result[key] = frozenset(found)
    return result


def successors(edges: Mapping[str, Sequence[str]]) -> dict[str, tuple[str, ...]]:
    """Every key's direct dependents, in declared order."""
    result: dict[str, list[str]] = {key: [] for key in edges}
    for key, dependencies in edges.items():
        for dependency in dependencies:
            result[dependency].append(key)
    return {key: tuple(found) for key, found in result.items()}


def layers(edges: Mapping[str, Sequence[str]]) -> tuple[tuple[str, ...], ...]:
    """Topological layers: layer 0 holds the keys without dependencies, layer n the keys whose
    deepest dependency is in layer n - 1. Within a layer, keys keep their declared order.
    Raises ``ValidationFailed`` naming a cycle or an unknown key."""
    _check_acyclic(edges)
    depth: dict[str, int] = {}
    for key in topological_order(edges):
        depth[key] = 1 + max((depth[d] for d in edges[key]), default=-1)
    grouped: list[list[str]] = [[] for _ in range(1 + max(depth.values(), default=-1))]
    for key in edges:
        grouped[depth[key]].append(key)
    return tuple(tuple(layer) for layer in grouped)


def topological_order(edges: Mapping[str, Sequence[str]]) -> tuple[str, ...]:
    """Every key after all its dependencies; among keys free at the same time, declared order wins
    (the earliest declared free key comes next). Raises ``ValidationFailed`` on a cycle."""
    _check_acyclic(edges)
    order = {key: position for position, key in enumerate(edges)}
    remaining = {key: len(set(dependencies)) for key, dependencies in edges.items()}
    dependents = successors({key: tuple(dict.fromkeys(deps)) for key, deps in edges.items()})
    free = [order[key] for key, count in remaining.items() if count == 0]
    heapq.heapify(free)
    keys = list(edges)
    result: list[str] = []
    while free:
        key = keys[heapq.heappop(free)]
        result.append(key)
        for dependent in dependents[key]:
            remaining[dependent] -= 1
            if remaining[dependent] == 0:
                heapq.heappush(free, order[dependent])
    return tuple(result)


def ready(edges: Mapping[str, Sequence[str]], finished: Iterable[str], started: Iterable[str] = ()) -> tuple[str, ...]:
    """Keys that are neither finished nor started and whose dependencies have all finished,
    in declared order."""
    done = set(finished)
    busy = done | set(started)
    return tuple(key for key, deps in edges.items() if key not in busy and all(d in done for d in deps))


def _check_acyclic(edges: Mapping[str, Sequence[str]]) -> None:
    errors: list[FieldError] = []
    for key, dependencies in edges.items():
        for dependency in dependencies:
            if dependency not in edges:
                errors.append(FieldError(key, f"depends on unknown step {dependency!r}"))
    if errors:
        raise ValidationFailed(errors)
    for cycle in find_cycles(edges):
        errors.append(FieldError(cycle[0], cycle_message(cycle)))
    if errors:
        raise ValidationFailed(errors)
