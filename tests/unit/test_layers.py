"""The package's layers: no module imports from a layer above its own (ARCHITECTURE, issue
"The house"). Read from the source with ``ast``, lazy imports inside functions included."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "src" / "stylesearch"

#: (importing subpackage, subpackage it must never import)
FORBIDDEN = [
    ("training", "evaluation"),
    ("index", "search"),
    *[(lower, top) for top in ("cli", "server") for lower in (
        "catalog", "text", "model", "losses", "training", "index", "search", "evaluation",
        "testing", "config", "errors", "folders", "retrieval_metrics", "demo", "demo_stages",
    )],
    ("server", "cli"),
]  # fmt: skip


def imported_layers(path: Path) -> set[str]:
    """The first component below ``stylesearch`` of every module ``path`` imports."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        names = []
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        for name in names:
            parts = name.split(".")
            if parts[0] == "stylesearch" and len(parts) > 1:
                found.add(parts[1])
    return found


def layer_of(path: Path) -> str:
    return path.relative_to(PACKAGE).with_suffix("").parts[0]


def test_the_scanner_sees_lazy_imports(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text(
        "import stylesearch.text.vocabulary\n"
        "def f():\n    from stylesearch.search.searcher import Searcher\n"
        "from os import path\nimport numpy\n"
    )
    assert imported_layers(module) == {"text", "search"}


def test_no_module_imports_from_a_higher_layer() -> None:
    modules = list(PACKAGE.rglob("*.py"))
    assert len(modules) > 50
    wrong = sorted(
        f"{path.relative_to(PACKAGE)} imports stylesearch.{upper}"
        for path in modules
        for upper in imported_layers(path)
        if (layer_of(path), upper) in FORBIDDEN
    )
    assert not wrong, wrong
