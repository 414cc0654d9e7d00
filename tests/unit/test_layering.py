"""The import rules of docs/design.md, read from the source with ast."""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src" / "gridshim"


def imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
    return found


def modules() -> dict[str, set[str]]:
    return {str(p.relative_to(SRC)): imports(p) for p in SRC.rglob("*.py")}


def test_only_cluster_talks_to_kubernetes() -> None:
    for mod, names in modules().items():
        if any(n == "kubernetes" or n.startswith("kubernetes.") for n in names):
            assert mod == "cluster.py", f"{mod} imports kubernetes"


def test_leaves_import_nothing_of_ours() -> None:
    for mod in ("model.py", "errors.py"):
        assert not [n for n in modules()[mod] if n.startswith("gridshim")], mod


def test_pure_layers_do_not_import_the_edge() -> None:
    edge = ("gridshim.cli", "gridshim.cluster", "click", "rich")
    for mod, names in modules().items():
        if mod.split("/")[0] in ("render", "gridflags.py", "translate.py", "status.py", "model.py", "config.py"):
            bad = [n for n in names if n.startswith(edge)]
            assert not bad, f"{mod} imports {bad}"


def test_only_cli_imports_click_and_only_output_or_cli_import_rich() -> None:
    for mod, names in modules().items():
        if any(n == "click" or n.startswith("click.") for n in names):
            assert mod.startswith("cli/"), mod
        if any(n == "rich" or n.startswith("rich.") for n in names):
            assert mod.startswith(("cli/", "output/")), mod
