"""The package's folders are its layers: no module imports from a layer above its own, and no
import cycle exists anywhere (imports inside functions count too)."""

from __future__ import annotations

import ast
from pathlib import Path

import lstmcast

PACKAGE = Path(lstmcast.__file__).parent

# Lowest first. A module may import from its own layer and the layers below.
LAYERS = [
    ("errors", "version", "checks", "choices", "files"),
    ("data", "datasets"),
    ("config",),
    ("kernels",),
    ("models",),
    ("engine",),
    ("evaluation",),
    ("workflows",),
    ("cli", "__main__"),  # python -m lstmcast runs the CLI
    ("__init__",),  # the public names: nothing inside imports them
]


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in PACKAGE.rglob("*.py")}


def imports(path: Path, known: set[str]) -> set[str]:
    """The lstmcast modules `path` imports, anywhere in its body."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            # `from lstmcast.x import y`: y is a module of its own, or a name defined in x
            names = [
                f"{node.module}.{alias.name}"
                if f"{node.module}.{alias.name}" in known
                else node.module
                for alias in node.names
            ]
        else:
            continue
        for name in names:
            while name and name not in known:
                name = name.rpartition(".")[0]
            if name.startswith("lstmcast"):
                found.add(name)
    return found


def layer(module: str) -> int:
    parts = module.split(".")
    top = parts[1] if len(parts) > 1 else "__init__"
    for rank, names in enumerate(LAYERS):
        if top in names:
            return rank
    raise AssertionError(f"{module} is in no layer; add its folder to LAYERS")


def graph() -> dict[str, set[str]]:
    found = modules()
    known = set(found)
    return {name: imports(path, known) - {name} for name, path in found.items()}


def test_no_module_imports_from_a_layer_above_it():
    wrong = [
        f"{module} (layer {layer(module)}) imports {target} (layer {layer(target)})"
        for module, targets in graph().items()
        for target in targets
        if layer(target) > layer(module)
    ]
    assert not wrong, "\n".join(wrong)


def test_no_import_cycle():
    edges = graph()
    cycles = []
    state: dict[str, int] = {}  # 1 visiting, 2 done

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(edges.get(node, ())):
            if nxt == "lstmcast" or nxt not in edges:
                continue
            if state.get(nxt) == 1:
                cycles.append(" -> ".join([*path[path.index(nxt) :], nxt]))
            elif nxt not in state:
                visit(nxt, [*path, nxt])
        state[node] = 2

    for node in sorted(edges):
        if node not in state:
            visit(node, [node])
    assert not cycles, "\n".join(cycles)


def test_the_checker_sees_a_planted_violation(tmp_path):
    planted = tmp_path / "bad.py"
    planted.write_text("def f():\n    from lstmcast.cli import app\n")
    assert imports(planted, set(modules())) == {"lstmcast.cli.app"}
    assert layer("lstmcast.cli") > layer("lstmcast.data.load")
