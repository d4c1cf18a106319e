"""Conditions (a step's ``when``) and input references, read against a run's data.

Both look at one context, built by the workflow run as it advances::

    {"trigger": <the run's input payload>,
     "steps": {"<key>": {"status": "succeeded", "output": <JSON or None>, "error": None}, ...}}

**Conditions** are small expressions in a Python-like syntax. They are parsed
with ``ast.parse(mode="eval")`` and the tree is walked against a whitelist;
nothing is ever passed to ``eval``, ``exec`` or ``compile`` beyond that parse,
and no attribute of a Python object is ever read (``a.b`` looks up the key
``"b"`` of the mapping ``a``). Allowed:

* names ``trigger`` and ``steps`` (and the constants ``True``/``true``,
  ``False``/``false``, ``None``/``null``);
* reading values with dots, ``steps.fetch.output.count``, or with brackets for
  keys that are not identifiers and for list indices,
  ``trigger["customer-id"]``, ``steps.fetch.output.items[0]``;
  ``steps`` must be followed by a literal step key and then by ``output``,
  ``status`` or ``error``;
* constants (strings, numbers, booleans, None), lists and tuples of them;
* comparisons ``== != < <= > >= in not in is is not``, ``and``, ``or``, ``not``;
* arithmetic on numbers ``+ - * / %`` and unary ``-``/``+``;
* the one function ``len(x)``.

Everything else (other calls, lambdas, comprehensions, ``if`` expressions,
slices, names starting with ``_``) is refused when the workflow is defined,
as are expressions over :data:`MAX_SOURCE` characters, :data:`MAX_NODES`
syntax nodes or :data:`MAX_DEPTH` levels of nesting. At run time a missing key,
an index out of range or a type mismatch raises :class:`ExpressionError`.

**Input references** are strings that start with ``$.``: ``$.trigger``,
``$.trigger.customer_id``, ``$.steps.fetch.output.items[0]``,
``$.steps.fetch.status``. Any other value is a literal; ``$$`` at the start
of a string escapes a literal ``$`` (``"$$.5"`` is the string ``"$.5"``).
"""

from __future__ import annotations

import ast
import re
import warnings
from collections.abc import Mapping
from typing import Any

from attrs import field, frozen

from domain.errors import DomainError, ValidationFailed

MAX_SOURCE = 2000
"""Longest condition, in characters."""
MAX_NODES = 300
"""Most syntax nodes in one condition."""
MAX_DEPTH = 40
"""Deepest nesting of syntax nodes in one condition."""

STEP_FIELDS = ("output", "status", "error")
"""What a condition or a reference may read of an upstream step."""

ROOTS = ("trigger", "steps")
_ALIASES: dict[str, Any] = {"true": True, "false": False, "null": None}
_FUNCTIONS = ("len",)


class ExpressionError(DomainError):
    """Raised when a condition or an input reference cannot be evaluated against a run's data
    (a missing key, an index out of range, a type mismatch, a division by zero)."""


_COMPARE = {
    ast.Eq: lambda a, b: a == b,
    ast.NotEq: lambda a, b: a != b,
    ast.Lt: lambda a, b: a < b,
    ast.LtE: lambda a, b: a <= b,
    ast.Gt: lambda a, b: a > b,
    ast.GtE: lambda a, b: a >= b,
    ast.In: lambda a, b: a in b,
    ast.NotIn: lambda a, b: a not in b,
    ast.Is: lambda a, b: a is b,
    ast.IsNot: lambda a, b: a is not b,
}
_ARITHMETIC = {
    ast.Add: lambda a, b: a + b,
    ast.Sub: lambda a, b: a - b,
    ast.Mult: lambda a, b: a * b,
    ast.Div: lambda a, b: a / b,
    ast.Mod: lambda a, b: a % b,
}
_OPERATOR_NAMES = {
    ast.Pow: "**", ast.FloorDiv: "//", ast.LShift: "<<", ast.RShift: ">>", ast.BitOr: "|",
    ast.BitAnd: "&", ast.BitXor: "^", ast.MatMult: "@", ast.Invert: "~",
}
_REFUSED_NODES = {
    ast.Lambda: "lambdas", ast.ListComp: "comprehensions", ast.SetComp: "comprehensions",
    ast.DictComp: "comprehensions", ast.GeneratorExp: "comprehensions", ast.IfExp: "if-expressions",
    ast.NamedExpr: "the := operator", ast.Await: "await", ast.Yield: "yield", ast.YieldFrom: "yield",
    ast.JoinedStr: "f-strings", ast.Starred: "* unpacking", ast.Slice: "slices", ast.Dict: "dict literals",
    ast.Set: "set literals",
}


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


# -- conditions ------------------------------------------------------------------


@frozen
class Condition:
    """A checked condition: its ``source`` text and the upstream steps it reads."""

    source: str
    steps: frozenset[str] = field(eq=False)
    _tree: ast.Expression = field(eq=False, repr=False)

    def evaluate(self, context: Mapping[str, Any]) -> bool:
        """True when the condition holds for ``context`` (``{"trigger": ..., "steps": ...}``)."""
        return bool(_Evaluator(context).value(self._tree.body))

    def __str__(self) -> str:
        return self.source


def parse_condition(source: Any, *, path: str = "when") -> Condition:
    """Check ``source`` against the whitelist; raises ``ValidationFailed`` on ``path`` naming the problem."""
    if isinstance(source, Condition):
        return source
    if not isinstance(source, str) or not source.strip():
        raise ValidationFailed.field(path, "must be a non-empty expression")
    if len(source) > MAX_SOURCE:
        raise ValidationFailed.field(path, f"must be at most {MAX_SOURCE} characters")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "invalid decimal literal", "invalid escape sequence": the text is refused or kept as is
            tree = ast.parse(source.strip(), mode="eval")
    except SyntaxError as exc:
        raise ValidationFailed.field(path, f"is not a valid expression: {exc.msg}") from None
    except (RecursionError, MemoryError, ValueError):
        raise ValidationFailed.field(path, "is too deeply nested") from None
    checker = _Checker(path)
    checker.check(tree.body, depth=1)
    return Condition(source.strip(), frozenset(checker.steps), tree)


class _Checker:
    """Walks a parsed condition and refuses anything outside the whitelist."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.nodes = 0
        self.steps: set[str] = set()

    def refuse(self, message: str) -> ValidationFailed:
        return ValidationFailed.field(self.path, message)

    def check(self, node: ast.AST, depth: int) -> None:
        self.nodes += 1
        if self.nodes > MAX_NODES:
            raise self.refuse(f"is too long: at most {MAX_NODES} terms")
        if depth > MAX_DEPTH:
            raise self.refuse(f"is too deeply nested: at most {MAX_DEPTH} levels")
        below = depth + 1
        match node:
            case ast.Constant(value=value):
                if not (value is None or isinstance(value, (str, bool, int, float))):
                    raise self.refuse(f"constant {ast.unparse(node)} is not allowed")
            case ast.Name(id=name):
                if name not in ROOTS and name not in _ALIASES:
                    if name in _FUNCTIONS:
                        raise self.refuse(f"{name} must be called, as in {name}(...)")
                    raise self.refuse(f"unknown name {name!r}; use trigger or steps")
                if name == "steps":
                    raise self.refuse("steps must be followed by a step key, as in steps.fetch.output")
            case ast.Attribute() | ast.Subscript():
                self.check_access(node, depth)
            case ast.BoolOp(values=values):
                for value in values:
                    self.check(value, below)
            case ast.UnaryOp(op=op, operand=operand):
                if not isinstance(op, (ast.Not, ast.USub, ast.UAdd)):
                    raise self.refuse(f"operator {_OPERATOR_NAMES.get(type(op), type(op).__name__)} is not allowed")
                self.check(operand, below)
            case ast.BinOp(left=left, op=op, right=right):
                if type(op) not in _ARITHMETIC:
                    raise self.refuse(f"operator {_OPERATOR_NAMES.get(type(op), type(op).__name__)} is not allowed")
                self.check(left, below)
                self.check(right, below)
            case ast.Compare(left=left, ops=ops, comparators=comparators):
                for op in ops:
                    if type(op) not in _COMPARE:  # pragma: no cover - every Python comparison is listed
                        raise self.refuse(f"comparison {type(op).__name__} is not allowed")
                self.check(left, below)
                for item in comparators:
                    self.check(item, below)
            case ast.List(elts=items) | ast.Tuple(elts=items):
                for item in items:
                    self.check(item, below)
            case ast.Call(func=ast.Name(id="len"), args=[arg], keywords=[]):
                self.check(arg, below)
            case ast.Call(func=func):
                name = ast.unparse(func)
                if name == "len":
                    raise self.refuse("len takes exactly one argument")
                raise self.refuse(f"calling {name} is not allowed; the only function is len(...)")
            case _:
                what = _REFUSED_NODES.get(type(node), type(node).__name__)
                raise self.refuse(f"{what} are not allowed" if what.endswith("s") else f"{what} is not allowed")

    def check_access(self, node: ast.Attribute | ast.Subscript, depth: int) -> None:
        """``a.b`` and ``a[k]``: keys must not start with ``_``; ``steps`` needs a literal key and field."""
        chain: list[ast.Attribute | ast.Subscript] = []
        base: ast.AST = node
        while isinstance(base, (ast.Attribute, ast.Subscript)):
            chain.append(base)
            base = base.value
        chain.reverse()  # innermost access first
        for link in chain:
            if isinstance(link, ast.Attribute) and link.attr.startswith("_"):
                raise self.refuse(f"names starting with '_' are not allowed ({link.attr})")
            if isinstance(link, ast.Subscript):
                key = link.slice
                if isinstance(key, ast.Constant) and isinstance(key.value, str) and key.value.startswith("_"):
                    raise self.refuse(f"keys starting with '_' are not allowed ({key.value!r})")
        if isinstance(base, ast.Name) and base.id == "steps":
            step = _literal_key(chain[0])
            if step is None:
                raise self.refuse("steps must be followed by a literal step key, as in steps.fetch or steps[\"fetch\"]")
            if len(chain) > 1:
                what = _literal_key(chain[1])
                if what not in STEP_FIELDS:
                    raise self.refuse(
                        f"a step offers {', '.join(STEP_FIELDS)}, not {ast.unparse(chain[1])[len(ast.unparse(chain[0])):]!r}"
                    )
            self.steps.add(step)
        elif isinstance(base, ast.Name):
            self.check(base, depth + len(chain))
        else:
            self.check(base, depth + len(chain))
        for offset, link in enumerate(chain):
            self.nodes += 1
            if isinstance(link, ast.Subscript):
                self.check(link.slice, depth + len(chain) - offset)


def _literal_key(link: ast.Attribute | ast.Subscript) -> str | None:
    if isinstance(link, ast.Attribute):
        return link.attr
    if isinstance(link.slice, ast.Constant) and isinstance(link.slice.value, str):
        return link.slice.value
    return None


class _Evaluator:
    """Evaluates a tree the checker accepted; only mappings, lists and plain values are touched."""

    def __init__(self, context: Mapping[str, Any]) -> None:
        self.context = context

    def fail(self, node: ast.AST, message: str) -> ExpressionError:
        return ExpressionError(f"{ast.unparse(node)}: {message}")

    def value(self, node: ast.AST) -> Any:
        match node:
            case ast.Constant(value=value):
                return value
            case ast.Name(id=name):
                if name in _ALIASES:
                    return _ALIASES[name]
                if name not in self.context:
                    raise self.fail(node, "is not available")
                return self.context[name]
            case ast.Attribute(value=base, attr=key):
                return self.lookup(node, self.value(base), key)
            case ast.Subscript(value=base, slice=key):
                return self.lookup(node, self.value(base), self.value(key))
            case ast.BoolOp(op=ast.And(), values=values):
                result: Any = True
                for item in values:
                    result = self.value(item)
                    if not result:
                        return result
                return result
            case ast.BoolOp(op=ast.Or(), values=values):
                result = False
                for item in values:
                    result = self.value(item)
                    if result:
                        return result
                return result
            case ast.UnaryOp(op=ast.Not(), operand=operand):
                return not self.value(operand)
            case ast.UnaryOp(op=op, operand=operand):
                number = self.value(operand)
                if not _is_number(number):
                    raise self.fail(node, f"needs a number, not {_kind(number)}")
                return -number if isinstance(op, ast.USub) else +number
            case ast.BinOp(left=left, op=op, right=right):
                a, b = self.value(left), self.value(right)
                if not (_is_number(a) and _is_number(b)):
                    raise self.fail(node, f"arithmetic needs numbers, not {_kind(a)} and {_kind(b)}")
                try:
                    return _ARITHMETIC[type(op)](a, b)
                except (ZeroDivisionError, OverflowError) as exc:
                    raise self.fail(node, str(exc)) from None
            case ast.Compare(left=left, ops=ops, comparators=comparators):
                current = self.value(left)
                for op, item in zip(ops, comparators):
                    other = self.value(item)
                    try:
                        holds = _COMPARE[type(op)](current, other)
                    except TypeError:
                        raise self.fail(node, f"cannot compare {_kind(current)} and {_kind(other)}") from None
                    if not holds:
                        return False
                    current = other
                return True
            case ast.List(elts=items):
                return [self.value(item) for item in items]
            case ast.Tuple(elts=items):
                return tuple(self.value(item) for item in items)
            case ast.Call(args=[arg]):
                item = self.value(arg)
                if not isinstance(item, (str, list, tuple, Mapping)):
                    raise self.fail(node, f"len needs a string, list or object, not {_kind(item)}")
                return len(item)
        raise self.fail(node, "is not allowed")  # pragma: no cover - the checker refused it

    def lookup(self, node: ast.AST, container: Any, key: Any) -> Any:
        return lookup(container, key, lambda message: self.fail(node, message))


def lookup(container: Any, key: Any, fail: Any) -> Any:
    """``container[key]`` for JSON-shaped data only: a mapping by string key, a list by integer index."""
    if isinstance(container, Mapping):
        if not isinstance(key, str):
            raise fail(f"object keys are strings, not {_kind(key)}")
        if key not in container:
            raise fail(f"has no key {key!r}")
        return container[key]
    if isinstance(container, (list, tuple)):
        if isinstance(key, bool) or not isinstance(key, int):
            raise fail(f"a list is indexed by a whole number, not {_kind(key)}")
        if not -len(container) <= key < len(container):
            raise fail(f"index {key} is out of range (length {len(container)})")
        return container[key]
    raise fail(f"cannot read {key!r} of {_kind(container)}")


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if _is_number(value):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, (list, tuple)):
        return "a list"
    if isinstance(value, Mapping):
        return "an object"
    return type(value).__name__  # pragma: no cover - contexts hold JSON


# -- input references ----------------------------------------------------------------

_SEGMENT = re.compile(r"""\.(?P<name>[A-Za-z_][A-Za-z0-9_-]*)|\[(?:(?P<index>-?\d+)|"(?P<key>[^"\\]*)")\]""")


@frozen
class Reference:
    """A ``$.``-reference: its ``source`` and the path it reads from the context.

    ``step`` is the upstream step it reads (``None`` for ``$.trigger``);
    ``path`` the keys and indices after ``trigger`` or after ``steps.<key>``.
    """

    source: str
    root: str
    step: str | None
    path: tuple[str | int, ...]

    def resolve(self, context: Mapping[str, Any]) -> Any:
        """The referenced value; raises :class:`ExpressionError` when it is missing."""
        def fail(message: str) -> ExpressionError:
            return ExpressionError(f"{self.source}: {message}")

        value = lookup(context, self.root, fail)
        if self.step is not None:
            value = lookup(value, self.step, lambda message: fail(f"step {self.step!r} has not finished"))
        for key in self.path:
            value = lookup(value, key, fail)
        return value


def is_reference(value: Any) -> bool:
    """True for a string that is a reference (starts with ``$.`` or ``$[``); ``$$...`` is an escaped literal."""
    return isinstance(value, str) and (value.startswith("$.") or value.startswith("$["))


def parse_reference(source: str, *, path: str = "") -> Reference:
    """Parse ``$.trigger...`` or ``$.steps.<key>.(output|status|error)...``; raises ``ValidationFailed`` on ``path``."""
    if len(source) > MAX_SOURCE:
        raise ValidationFailed.field(path, f"must be at most {MAX_SOURCE} characters")
    segments: list[str | int] = []
    position = 1
    while position < len(source):
        match = _SEGMENT.match(source, position)
        if match is None:
            raise ValidationFailed.field(
                path, f"{source!r} is not a reference: expected .name, [index] or [\"key\"] at position {position}"
            )
        if match["name"] is not None:
            segments.append(match["name"])
        elif match["index"] is not None:
            segments.append(int(match["index"]))
        else:
            segments.append(match["key"])
        position = match.end()
    if not segments or segments[0] not in ROOTS:
        raise ValidationFailed.field(path, f"{source!r} must start with $.trigger or $.steps")
    if segments[0] == "trigger":
        return Reference(source, "trigger", None, tuple(segments[1:]))
    if len(segments) < 3 or not isinstance(segments[1], str) or segments[2] not in STEP_FIELDS:
        raise ValidationFailed.field(
            path, f"{source!r} must read a step's output, status or error, as in $.steps.fetch.output"
        )
    return Reference(source, "steps", segments[1], tuple(segments[2:]))


def literal(value: Any) -> Any:
    """A literal input's value: ``$$...`` loses its first ``$``; anything else is itself."""
    if isinstance(value, str) and value.startswith("$$"):
        return value[1:]
    return value


def escape_literal(value: Any) -> Any:
    """The inverse of :func:`literal`: a string that would read as a reference gains a ``$``."""
    if isinstance(value, str) and value.startswith("$"):
        return "$" + value
    return value
