"""The import rule of ttdr/__init__.py, checked on every import of every module (those inside
functions and under TYPE_CHECKING too):

    ui, ttdr.cli  →  ttdr.api  →  agents  →  backends  →  ttdr core

Every module must belong to a layer listed here, so a new module is placed on purpose.
`python -m tests.test_import_layers` prints the graph between layers.
"""

from __future__ import annotations

import ast
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("ttdr", "agents", "backends", "ui")

# The front door: `ttdr.api`, the package (which re-exports `Researcher` from it), and the
# modules behind the door that the API re-exports.
FRONT_DOOR = {"ttdr", "ttdr.api"}
BEHIND_THE_DOOR = {
    "ttdr.benchmarks",
    "ttdr.catalog",
    "ttdr.evaluation",
    "ttdr.fact_recall",
    "ttdr.prompt_population",
    "ttdr.retrieval_eval",
    "ttdr.training",
}
# The core: domain types and protocols every layer may use, and the store behind them.
DOMAIN = {
    "ttdr.config",
    "ttdr.errors",
    "ttdr.events",
    "ttdr.export",
    "ttdr.export_docx",
    "ttdr.export_pdf",
    "ttdr.language",
    "ttdr.liveness",
    "ttdr.models",
    "ttdr.progress",
    "ttdr.recording",
    "ttdr.sqlite_failure",
    "ttdr.terminal",
}
STORE = "ttdr.store"
# The front ends, each its own package: the UI, the command line and the HTTP server. None
# imports another (`ttdr ui` and `ttdr serve` exec theirs as programs of their own).
FRONT_ENDS = ("ui", "ttdr.cli", "ttdr.serve")
RANK = {"front end": 4, "api": 3, "agents": 2, "backends": 1, "core": 0}
# Edges against the rule that are known and due to go; any other one fails the test.
PENDING: set[tuple[str, str]] = set()


@dataclass(frozen=True)
class Edge:
    source: str
    target: str
    where: str  # path:line

    def __str__(self) -> str:
        return f"{self.where}: {self.source} imports {self.target}"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def modules() -> dict[str, Path]:
    return {
        module_name(path): path
        for package in PACKAGES
        for path in sorted((ROOT / package).rglob("*.py"))
    }


def within(name: str, package: str) -> bool:
    return name == package or name.startswith(package + ".")


def layer(name: str) -> str | None:
    if any(within(name, front) for front in FRONT_ENDS):
        return "front end"
    if name in FRONT_DOOR or name in BEHIND_THE_DOOR:
        return "api"
    if within(name, "agents"):
        return "agents"
    if within(name, "backends"):
        return "backends"
    if name in DOMAIN or within(name, STORE):
        return "core"
    return None


def imports(name: str, path: Path, known: set[str]) -> list[Edge]:
    """Every import of a module of this repository, wherever it stands in the file."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    edges = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            # `from ui import icons` imports the module ui.icons; `from ttdr.models import X`
            # imports ttdr.models.
            targets = [
                f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base
                for alias in node.names
            ]
        where = f"{path.relative_to(ROOT)}:{getattr(node, 'lineno', 0)}"
        resolved = []
        for target in targets:
            while target and target not in known:  # `import backends.llm.x.y` → the module
                target = target.rpartition(".")[0]
            if target and target.split(".")[0] in PACKAGES:
                resolved.append(target)
        edges += [Edge(name, target, where) for target in dict.fromkeys(resolved)]
    return edges


def all_edges() -> list[Edge]:
    found = modules()
    known = set(found)
    return [edge for name, path in found.items() for edge in imports(name, path, known)]


def breaks_the_rule(edge: Edge) -> str | None:
    """Why `edge` runs against the import rule, or None when it follows it."""
    source, target = layer(edge.source), layer(edge.target)
    assert source is not None and target is not None  # checked by the test below
    if source == "front end":
        own = next(front for front in FRONT_ENDS if within(edge.source, front))
        if within(edge.target, own) or edge.target in FRONT_DOOR or edge.target in DOMAIN:
            return None
        return "a front end imports only ttdr.api and the core's domain types"
    if RANK[target] > RANK[source]:
        return f"{source} may not import {target} (imports flow down)"
    if source in ("agents", "backends") and within(edge.target, STORE):
        return f"{source} records through ttdr.recording, not the concrete store"
    if edge.source in DOMAIN and within(edge.target, STORE):
        return "the core's domain types do not depend on the store"
    return None


def layer_graph(edges: list[Edge]) -> Counter[tuple[str, str]]:
    return Counter(
        (layer(e.source) or "?", layer(e.target) or "?")
        for e in edges
        if layer(e.source) != layer(e.target)
    )


def test_every_module_belongs_to_a_layer() -> None:
    unplaced = sorted(name for name in modules() if layer(name) is None)
    assert unplaced == [], f"place these modules in a layer of {__file__}: {unplaced}"


def test_every_import_follows_the_rule() -> None:
    edges = all_edges()
    assert len(edges) > 200  # the walk found the repository's imports
    against = [
        f"{edge}  ({why})"
        for edge in edges
        if (why := breaks_the_rule(edge)) and (edge.source, edge.target) not in PENDING
    ]
    assert against == [], "imports against the rule:\n" + "\n".join(against)
    still_there = {(e.source, e.target) for e in edges}
    assert still_there >= PENDING, "a pending edge is gone: remove it from PENDING"


def test_only_the_ui_imports_streamlit() -> None:
    offenders = []
    for name, path in modules().items():
        if within(name, "ui"):
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = (
                [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
                if isinstance(node, ast.ImportFrom)
                else []
            )
            if any(within(n, "streamlit") for n in names):
                offenders.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert offenders == []


def test_the_check_catches_an_edge_against_the_rule() -> None:
    """The rule itself, on edges that must fail and edges that must pass."""
    wrong = [
        Edge("ttdr.cli.models", "backends.llm.registry", "x"),
        Edge("ui.pages.models", "agents.prompt_book", "x"),
        Edge("ttdr.cli", "ui.launch", "x"),
        Edge("ttdr.cli.serve", "ttdr.serve.app", "x"),
        Edge("ttdr.serve.app", "backends.llm.protocol", "x"),
        Edge("ttdr.cli.history", "ttdr.store", "x"),
        Edge("ttdr.cli.eval", "ttdr.evaluation", "x"),
        Edge("agents.context", "ttdr.store.runs", "x"),
        Edge("backends.search.web", "agents.answer", "x"),
        Edge("ttdr.models", "backends.search.types", "x"),
        Edge("agents.graph", "ttdr.api", "x"),
    ]
    right = [
        Edge("ttdr.cli.models", "ttdr.api", "x"),
        Edge("ttdr.serve.app", "ttdr.api", "x"),
        Edge("ui.pages.run", "ttdr.models", "x"),
        Edge("ttdr.api", "agents.graph", "x"),
        Edge("ttdr.catalog", "backends.llm.registry", "x"),
        Edge("backends.search.types", "ttdr.events", "x"),
        Edge("ttdr.store.runs", "ttdr.models", "x"),
    ]
    assert all(breaks_the_rule(edge) for edge in wrong)
    assert not any(breaks_the_rule(edge) for edge in right)


if __name__ == "__main__":
    graph = layer_graph(all_edges())
    order = sorted(graph, key=lambda pair: (-RANK[pair[0]], -RANK[pair[1]]))
    for source, target in order:
        print(f"{source:>9} → {target:<9} {graph[source, target]:4d} imports")
