"""A small, safe expression language for trigger conditions and step `if`s.

Python syntax, parsed with `ast` and walked node by node; never `eval`. Allowed: literals,
lists/tuples, field names with dots (`source.ip`, `alert.severity`, `steps.approve.outcome`),
comparisons (== != < <= > >= in, not in), `and`, `or`, `not`, and a few functions
(`cidr(ip, "10.0.0.0/8")`, `len(x)`, `lower(s)`, `startswith(s, prefix)`, `coalesce(a, b, …)`).
Anything else is refused when the playbook is loaded, so a bad expression is a load error with
its line, not a surprise at 3 a.m. A missing field is None (comparisons with None are false, not errors).
"""
from __future__ import annotations

import ast
import ipaddress
import operator
from collections.abc import Callable, Mapping
from functools import lru_cache


class ExpressionError(ValueError):
    pass


def _cidr(ip, network) -> bool:
    try:
        return ipaddress.ip_address(str(ip)) in ipaddress.ip_network(str(network), strict=False)
    except ValueError:
        return False


FUNCTIONS: dict[str, Callable] = {
    "cidr": _cidr,
    "len": lambda x: len(x) if x is not None else 0,
    "lower": lambda s: str(s).lower() if s is not None else None,
    "startswith": lambda s, p: isinstance(s, str) and s.startswith(str(p)),
    # the first value that is set and not empty: `coalesce(alert.watchkeeper.alert.message_zh,
    # alert.message)` (detectors' zh-CN wording, else the English ECS message)
    "coalesce": lambda *values: next((v for v in values if v not in (None, "", [])), None),
}

_COMPARE = {ast.Eq: operator.eq, ast.NotEq: operator.ne, ast.Lt: operator.lt,
            ast.LtE: operator.le, ast.Gt: operator.gt, ast.GtE: operator.ge,
            ast.In: lambda a, b: b is not None and a in b,
            ast.NotIn: lambda a, b: b is None or a not in b}


def _dotted(node: ast.AST) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        base = _dotted(node.value)
        return f"{base}.{node.attr}" if base else None
    return None


def lookup(values: Mapping, dotted: str):
    current: object = values
    for part in dotted.split("."):
        if isinstance(current, Mapping) and part in current:
            current = current[part]
        else:
            return None
    return current


class Expression:
    """Compiled once (validated), evaluated against a mapping of fields many times."""

    def __init__(self, source: str):
        self.source = source
        try:
            tree = ast.parse(source.strip(), mode="eval")
        except SyntaxError as exc:
            raise ExpressionError(f"expression {source!r} is not valid: {exc.msg}") from None
        self._check(tree.body)
        self._tree = tree.body

    def _check(self, node: ast.AST) -> None:
        dotted = _dotted(node)
        if dotted is not None:
            if any(part.startswith("_") for part in dotted.split(".")):
                raise ExpressionError(f"expression {self.source!r}: field {dotted!r}: names "
                                      f"starting with _ are not allowed")
            return
        if isinstance(node, ast.Constant) and isinstance(node.value, (str, int, float, bool,
                                                                      type(None))):
            return
        if isinstance(node, (ast.List, ast.Tuple)):
            for item in node.elts:
                self._check(item)
            return
        if isinstance(node, ast.BoolOp):
            for value in node.values:
                self._check(value)
            return
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.Not, ast.USub)):
            self._check(node.operand)
            return
        if isinstance(node, ast.Compare) and all(type(op) in _COMPARE for op in node.ops):
            for part in (node.left, *node.comparators):
                self._check(part)
            return
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
                and node.func.id in FUNCTIONS and not node.keywords):
            for arg in node.args:
                self._check(arg)
            return
        raise ExpressionError(f"expression {self.source!r}: {type(node).__name__} is not "
                              f"allowed (fields, literals, comparisons, and/or/not, "
                              f"{', '.join(sorted(FUNCTIONS))})")

    def evaluate(self, values: Mapping) -> object:
        return self._eval(self._tree, values)

    def test(self, values: Mapping) -> bool:
        return bool(self.evaluate(values))

    def _eval(self, node: ast.AST, values: Mapping) -> object:
        dotted = _dotted(node)
        if dotted is not None:
            return {"true": True, "false": False, "null": None}.get(dotted,
                                                                     lookup(values, dotted))
        if isinstance(node, ast.Constant):
            return node.value
        if isinstance(node, (ast.List, ast.Tuple)):
            return [self._eval(item, values) for item in node.elts]
        if isinstance(node, ast.BoolOp):
            results = (self._eval(v, values) for v in node.values)
            return all(results) if isinstance(node.op, ast.And) else any(results)
        if isinstance(node, ast.UnaryOp):
            value = self._eval(node.operand, values)
            if isinstance(node.op, ast.Not):
                return not value
            return -value if isinstance(value, (int, float)) else None
        if isinstance(node, ast.Compare):
            return self._compare(node, values)
        func = FUNCTIONS[node.func.id]   # _check allowed nothing else
        try:
            return func(*(self._eval(arg, values) for arg in node.args))
        except (TypeError, ValueError):   # len(5), a wrong argument count: no value
            return None

    def _compare(self, node: ast.Compare, values: Mapping) -> bool:
        left = self._eval(node.left, values)
        for op, right_node in zip(node.ops, node.comparators):
            right = self._eval(right_node, values)
            try:
                if not _COMPARE[type(op)](left, right):
                    return False
            except TypeError:      # None < 3, "a" > 1: false, not a crash
                return False
            left = right
        return True


@lru_cache(maxsize=4096)
def compiled(source: str) -> Expression:
    """Parsed and checked once per distinct text (triggers are tested on every alert)."""
    return Expression(source)
