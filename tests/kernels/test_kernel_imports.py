"""kernels/ is the layer below the models: it imports only lstmcast's foundation modules and its
own, and inside kernels/ no module imports one that imports it back (imports inside functions
count). The package-wide rules are in tests/test_layers.py; this one is stricter for kernels."""

from __future__ import annotations

import ast
from pathlib import Path

from lstmcast import kernels

FOLDER = Path(kernels.__file__).parent
ALLOWED = {"lstmcast.errors", "lstmcast.choices", "lstmcast.checks", "lstmcast.files"}


def lstmcast_imports(path: Path) -> set[str]:
    """The lstmcast modules `path` imports, anywhere in its body; `from lstmcast.kernels import
    x` counts as lstmcast.kernels.x."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module == "lstmcast.kernels":
                found |= {f"lstmcast.kernels.{alias.name}" for alias in node.names}
            else:
                found.add(node.module)
    return {name for name in found if name.startswith("lstmcast")}


def graph() -> dict[str, set[str]]:
    return {
        f"lstmcast.kernels.{path.stem}": lstmcast_imports(path)
        for path in FOLDER.glob("*.py")
        if path.stem != "__init__"
    }


def test_kernels_import_only_the_foundation_and_each_other():
    wrong = {
        f"{module} imports {target}"
        for module, targets in graph().items()
        for target in targets
        if target not in ALLOWED and not target.startswith("lstmcast.kernels.")
    }
    assert not wrong


def test_no_kernel_module_imports_one_that_imports_it_back():
    edges = graph()

    def reaches(start: str, goal: str, seen: set[str]) -> bool:
        for nxt in edges.get(start, set()) - seen:
            if nxt == goal or reaches(nxt, goal, seen | {nxt}):
                return True
        return False

    assert not [module for module in edges if reaches(module, module, set())]
    # not vacuous: the checker sees the imports that are there
    assert "lstmcast.kernels.triton_lstm" in edges["lstmcast.kernels.dispatch"]
    assert "lstmcast.files" in edges["lstmcast.kernels.cpu_lstm"]
