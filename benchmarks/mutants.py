"""Mutants of a solution cell: small, plausible wrong answers, one change each.

:func:`mutants` parses a solution cell, finds the nodes inside its ``### BEGIN SOLUTION`` ...
``### END SOLUTION`` regions and yields one :class:`Mutant` per change, each the whole cell's
source (without comments) with that one change:

- **activation**, **padding**, **pooling mode**, **initialiser** strings swapped
  (``"relu"`` -> ``"tanh"``, ``"same"`` -> ``"valid"``, ``"he_normal"`` -> ``"glorot_uniform"``...);
- **layer classes** swapped (max and average pooling, ``Add`` and ``Subtract``...);
- **a layer call deleted** (``x = layers.Dense(...)(x)`` becomes ``pass``);
- **a keyword argument deleted** (``strides=2``, ``activation=...``, ``dtype="float32"``);
- **numbers changed** (an integer plus one, a float doubled, 0 and 1 swapped);
- **comparison operators** changed (``<`` and ``<=``, ``==`` and ``!=``...);
- **arithmetic operators** swapped (``+`` and ``-``, ``*`` and ``/``);
- **two positional arguments** of a call swapped.

A mutant may compute the same function as the original (an "equivalent mutant"); the
benchmark lists survivors so that a person can tell.
"""

from __future__ import annotations

import ast
import copy
from collections.abc import Iterator
from dataclasses import dataclass

from utils.labs import format as labformat

STRING_SWAPS = {
    "relu": "tanh", "tanh": "relu", "sigmoid": "relu", "softmax": "linear", "elu": "relu",
    "same": "valid", "valid": "same", "max": "average", "average": "max",
    "he_normal": "glorot_uniform", "glorot_uniform": "he_normal", "he_uniform": "glorot_uniform",
    "float32": "float16",
}
NAME_SWAPS = {
    "MaxPooling2D": "AveragePooling2D", "AveragePooling2D": "MaxPooling2D",
    "GlobalAveragePooling2D": "GlobalMaxPooling2D", "GlobalMaxPooling2D": "GlobalAveragePooling2D",
    "Add": "Subtract", "Concatenate": "Add", "argmax": "argmin", "argmin": "argmax",
    "max": "min", "min": "max", "maximum": "minimum", "minimum": "maximum", "sum": "mean",
    "mean": "sum", "exp": "log", "log": "exp", "sqrt": "square", "square": "sqrt",
}
COMPARE_SWAPS = {
    ast.Lt: ast.LtE, ast.LtE: ast.Lt, ast.Gt: ast.GtE, ast.GtE: ast.Gt,
    ast.Eq: ast.NotEq, ast.NotEq: ast.Eq,
}
BINOP_SWAPS = {ast.Add: ast.Sub, ast.Sub: ast.Add, ast.Mult: ast.Div, ast.Div: ast.Mult,
               ast.FloorDiv: ast.Mult, ast.Pow: ast.Mult}


@dataclass(frozen=True)
class Mutant:
    """One change to a cell: ``source`` is the whole mutated cell, ``line`` is 1-based and
    ``code`` is the original text of that line, stripped."""

    line: int
    description: str
    source: str
    code: str = ""


def solution_lines(source: str) -> set[int]:
    """1-based numbers of the lines strictly between BEGIN and END SOLUTION markers."""
    lines, inside = set(), False
    for number, line in enumerate(source.splitlines(), start=1):
        stripped = line.strip()
        if stripped.startswith(labformat.BEGIN):
            inside = True
        elif stripped.startswith(labformat.END):
            inside = False
        elif inside:
            lines.add(number)
    return lines


def _changes(node) -> Iterator[tuple[str, object]]:
    """``(description, replacement node or "delete")`` for one node."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        if node.value in STRING_SWAPS:
            yield f"{node.value!r} -> {STRING_SWAPS[node.value]!r}", ast.Constant(
                STRING_SWAPS[node.value])
    elif isinstance(node, ast.Constant) and type(node.value) in (int, float):
        value = node.value
        new = {0: 1, 1: 0}.get(value, value + 1 if isinstance(value, int) else value * 2)
        yield f"{value!r} -> {new!r}", ast.Constant(new)
    elif isinstance(node, ast.Attribute) and node.attr in NAME_SWAPS:
        new = copy.copy(node)
        new.attr = NAME_SWAPS[node.attr]
        yield f"{node.attr} -> {new.attr}", new
    elif isinstance(node, ast.Name) and node.id in NAME_SWAPS and isinstance(node.ctx, ast.Load):
        yield f"{node.id} -> {NAME_SWAPS[node.id]}", ast.Name(NAME_SWAPS[node.id], ast.Load())
    elif isinstance(node, ast.Compare) and type(node.ops[0]) in COMPARE_SWAPS:
        new = copy.copy(node)
        new.ops = [COMPARE_SWAPS[type(node.ops[0])](), *node.ops[1:]]
        yield f"{ast.unparse(node)} -> {ast.unparse(new)}", new
    elif isinstance(node, ast.BinOp) and type(node.op) in BINOP_SWAPS:
        new = copy.copy(node)
        new.op = BINOP_SWAPS[type(node.op)]()
        yield f"{ast.unparse(node)} -> {ast.unparse(new)}", new
    elif isinstance(node, ast.Call):
        for index, keyword in enumerate(node.keywords):
            if keyword.arg is not None:
                new = copy.copy(node)
                new.keywords = node.keywords[:index] + node.keywords[index + 1:]
                yield f"keyword {keyword.arg}= deleted", new
        if len(node.args) >= 2 and not any(isinstance(a, ast.Starred) for a in node.args[:2]):
            new = copy.copy(node)
            new.args = [node.args[1], node.args[0], *node.args[2:]]
            yield "first two arguments swapped", new
    elif _is_layer_call(node):
        yield f"layer call deleted ({ast.unparse(node.value.func)[:40]})", "delete"


def _is_layer_call(node) -> bool:
    """``x = Something(...)(x)``: a statement that passes ``x`` through a layer."""
    return (
        isinstance(node, ast.Assign) and len(node.targets) == 1
        and isinstance(node.targets[0], ast.Name) and isinstance(node.value, ast.Call)
        and isinstance(node.value.func, ast.Call) and len(node.value.args) == 1
        and isinstance(node.value.args[0], ast.Name)
        and node.value.args[0].id == node.targets[0].id
    )


class _Replace(ast.NodeTransformer):
    def __init__(self, target_index: int, replacement):
        self.index, self.target, self.replacement = -1, target_index, replacement

    def generic_visit(self, node):
        self.index += 1
        if self.index == self.target:
            return ast.Pass() if self.replacement == "delete" else self.replacement
        return super().generic_visit(node)


def mutants(source: str) -> list[Mutant]:
    """Every single-change mutant of the solution regions of a cell, without duplicates."""
    inside = solution_lines(source)
    if not inside:
        return []
    tree = ast.parse(source)
    original = ast.unparse(tree)
    nodes = list(_walk(tree))
    found, seen, lines = [], {original}, source.splitlines()
    for index, node in enumerate(nodes):
        if getattr(node, "lineno", None) not in inside:
            continue
        for description, replacement in _changes(node):
            changed = _Replace(index, replacement).visit(copy.deepcopy(tree))
            text = ast.unparse(ast.fix_missing_locations(changed))
            if text not in seen:
                seen.add(text)
                code = lines[node.lineno - 1].strip()
                found.append(Mutant(node.lineno, description, text, code))
    return found


def _walk(tree) -> Iterator[ast.AST]:
    """Nodes in the order :class:`_Replace` counts them (depth first, pre-order)."""
    yield tree
    for child in ast.iter_child_nodes(tree):
        yield from _walk(child)

