"""The import graph of ``src/seqlab`` (read with ``ast``): no cycle, layers import downward only, and no seqlab
import hidden inside a function. An import under ``if TYPE_CHECKING:`` (for annotations only, never run) obeys
the layers but may close a cycle: ``Dataset.spec`` is typed with the ``DataSpec`` that makes the ``Dataset``.

    interface     cli
    application   runs (with its policy: which contenders, how a neural fit is sized), experiments
    models        base, models, training, io, streaming, export
    foundation    cells, recurrent, kernels, distributions, metrics, transforms, data, atomic, limits, errors, plots,
                  distributed, voice
"""

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
LAYERS = {
    "cli": 3,
    "cli_options": 3,
    "runs": 2,
    "experiments": 2,
    "voice": 0,
    **dict.fromkeys(("base", "models", "training", "io", "streaming", "export"), 1),
    **dict.fromkeys(
        (
            "cells",
            "recurrent",
            "kernels",
            "distributions",
            "metrics",
            "transforms",
            "data",
            "atomic",
            "limits",
            "errors",
            "plots",
            "distributed",
        ),
        0,
    ),
}
# seqlab imports allowed inside a function, each with its reason
LAZY = {("seqlab.recurrent", "seqlab.kernels"): "Triton: an optional, heavy dependency loaded on first use"}
LAZY |= {("seqlab.__main__", "seqlab.cli"): "the command line: Ctrl-C handling is in place before torch imports"}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in sorted((SRC / "seqlab").rglob("*.py"))}


def imports(name: str, type_checking: bool = True) -> list[tuple[str, bool]]:
    """(imported seqlab module, whether the import sits inside a function) for every import in ``name``;
    ``type_checking=False`` leaves out those under ``if TYPE_CHECKING:``."""
    tree = ast.parse(MODULES[name].read_text(encoding="utf-8"))
    package = name if MODULES[name].name == "__init__.py" else name.rpartition(".")[0]
    found = []

    def visit(node: ast.AST, in_function: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if not type_checking and isinstance(child, ast.If) and ast.unparse(child.test) == "TYPE_CHECKING":
                continue
            inside = in_function or isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda)
            targets = []
            if isinstance(child, ast.Import):
                targets = [a.name for a in child.names]
            elif isinstance(child, ast.ImportFrom):
                base = child.module or ""
                if child.level:
                    base = ".".join(package.split(".")[: len(package.split(".")) - child.level + 1] + [base]).strip(".")
                targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in MODULES else base for a in child.names]
            found.extend((t, inside) for t in targets if t.split(".")[0] == "seqlab" and t in MODULES)
            visit(child, inside)

    visit(tree, False)
    return found


GRAPH = {name: {t for t, _ in imports(name) if t != name} for name in MODULES}
RUNTIME_GRAPH = {name: {t for t, _ in imports(name, type_checking=False) if t != name} for name in MODULES}


def layer(name: str) -> int | None:
    parts = name.split(".")
    return LAYERS.get(parts[1]) if len(parts) > 1 else None  # the package itself (the public API) is above all


def test_every_module_has_a_layer():
    assert [n for n in MODULES if n != "seqlab" and n != "seqlab.__main__" and layer(n) is None] == []


def test_no_import_cycle():
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def walk(node: str, path: list[str]) -> None:
        state[node] = 1
        for target in sorted(RUNTIME_GRAPH[node]):
            if state.get(target) == 1:
                cycle = path[path.index(target) :] + [target]
                pytest.fail("import cycle: " + " -> ".join(cycle))
            if target not in state:
                walk(target, [*path, target])
        state[node] = 2

    for name in MODULES:
        if name not in state:
            walk(name, [name])


@pytest.mark.parametrize("name", sorted(n for n in MODULES if layer(n) is not None))
def test_layers_import_downward_only(name):
    upward = [t for t in GRAPH[name] if layer(t) is None or layer(t) > layer(name)]
    assert upward == [], f"{name} (layer {layer(name)}) imports from above: {upward}"


def test_no_seqlab_import_hidden_in_a_function():
    hidden = [(n, t) for n in MODULES for t, inside in imports(n) if inside and (n, t) not in LAZY]
    assert hidden == []
