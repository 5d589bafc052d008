"""The house rule: a room imports only from the floors below it, with no circle, imports inside functions included.

Every import is read from the source with `ast` (so one hidden inside a function counts like one at the top). Run
`python tests/test_layers.py [REPO]` to print the figures the rule keeps: files, floors, circles, layer breaches."""
from __future__ import annotations

import ast
import sys
from functools import lru_cache
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

# Lowest first. A module may import from its own layer or any layer below, never from one above.
LAYERS: list[tuple[str, tuple[str, ...]]] = [
    ("base", ("gan_core.errors", "gan_core.safe_io", "gan_core.extras", "gan_core.classroom")),
    ("registries", ("gan_core.losses", "gan_core.data", "gan_core.models")),
    ("config", ("gan_core.tasks", "gan_core.config", "gan_core.presets")),
    ("engine", ("gan_core.engine",)),
    ("applications", ("gan_core.restore", "gan_core.playground")),
    ("runs", ("gan_core.runs",)),
    ("insight", ("gan_core.insight",)),
    ("entry", ("gan_core.cli", "gan_core.launch", "gan_core.__main__", "gan_core")),
    ("ui", ("ui",)),
    ("pages", ("pages", "app")),
]
SOURCES = ("gan_core", "ui", "pages")


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules(root: Path = REPO) -> dict[str, Path]:
    found = {module_name(p, root): p for folder in SOURCES for p in sorted((root / folder).rglob("*.py"))}
    if (root / "app.py").exists():
        found["app"] = root / "app.py"
    return found


def imported_names(path: Path, name: str, top_level_only: bool = False) -> set[str]:
    """Every module `path` imports, at any depth of its code (functions, branches), as absolute dotted names;
    `top_level_only` reads only the module's own top-level statements (what the issue's "hidden" circle hid behind)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    tree = ast.parse(path.read_text(encoding="utf-8"))
    out = set()
    for node in (tree.body if top_level_only else ast.walk(tree)):
        if isinstance(node, ast.Import):
            out.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[:len(package.split(".")) - node.level + 1]
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = node.module
            out.update(f"{source}.{alias.name}" for alias in node.names)
            out.add(source)
    return out


def graph(root: Path = REPO, top_level_only: bool = False) -> dict[str, set[str]]:
    """{module: the project modules it imports}. `from pkg import sub` points at pkg.sub, not at pkg's face."""
    mods = modules(root)
    edges = {}
    for name, path in mods.items():
        targets = set()
        raw = imported_names(path, name, top_level_only)
        for imported in raw:
            if imported in mods:
                targets.add(imported)
            elif imported.rpartition(".")[0] in mods and imported.rpartition(".")[0] not in raw:
                targets.add(imported.rpartition(".")[0])  # `from pkg.mod import Name`: the edge goes to pkg.mod
        for imported in raw:  # `from pkg import sub` names both pkg and pkg.sub: keep only the submodule
            if imported in mods and any(t.startswith(imported + ".") for t in targets if t in raw):
                targets.discard(imported)
        targets.discard(name)
        edges[name] = targets
    return edges


def circles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected groups of more than one module (Tarjan)."""
    index, low, stack, on_stack, found, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in edges[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                group.append(w)
                if w == v:
                    break
            found.append(sorted(group))

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10_000))
    for v in sorted(edges):
        if v not in index:
            visit(v)
    return [g for g in found if len(g) > 1]


def floors(edges: dict[str, set[str]], prefix: str = "gan_core") -> int:
    """How many floors the library stands on: the longest import chain, a circle counted as one floor."""
    edges = {k: {t for t in v if t.startswith(prefix)} for k, v in edges.items() if k.startswith(prefix)}
    group_of = {}
    for i, group in enumerate(circles(edges)):
        for m in group:
            group_of[m] = f"circle{i}"
    node = {m: group_of.get(m, m) for m in edges}
    condensed: dict[str, set[str]] = {}
    for m, targets in edges.items():
        condensed.setdefault(node[m], set()).update(node[t] for t in targets if node[t] != node[m])

    @lru_cache(maxsize=None)
    def height(n: str) -> int:
        return 1 + max((height(t) for t in condensed.get(n, ())), default=0)

    return max(height(n) for n in condensed)


def layer_of(name: str) -> int | None:
    """The index of the most specific LAYERS prefix that names `name`."""
    best = None
    for i, (_, prefixes) in enumerate(LAYERS):
        for p in prefixes:
            if name == p or name.startswith(p + "."):
                if best is None or len(p) > best[1]:
                    best = (i, len(p))
    return None if best is None else best[0]


def breaches(edges: dict[str, set[str]]) -> list[str]:
    """Imports that go up a layer."""
    out = []
    for name, targets in sorted(edges.items()):
        for t in sorted(targets):
            if layer_of(name) is not None and layer_of(t) is not None and layer_of(t) > layer_of(name):
                out.append(f"{name} ({LAYERS[layer_of(name)][0]}) imports {t} ({LAYERS[layer_of(t)][0]})")
    return out


def third_party(root: Path, prefix: str, package: str) -> list[str]:
    """Modules under `prefix` that import `package` anywhere in their code."""
    return sorted(n for n, p in modules(root).items() if (n == prefix or n.startswith(prefix + "."))
                  and any(i == package or i.startswith(package + ".") for i in imported_names(p, n)))


# ---------------------------------------------------------------------------------------------------------- tests
def test_every_project_module_has_a_layer():
    assert [n for n in modules() if layer_of(n) is None] == []


def test_no_import_circle_even_inside_functions():
    assert circles(graph()) == []


def test_no_import_goes_up_a_layer():
    assert breaches(graph()) == []


def test_the_engine_never_reaches_runs_insight_or_the_playground():
    edges = graph()
    upward = {f"{n} -> {t}" for n, ts in edges.items() if n.startswith("gan_core.engine") for t in ts
              if t.startswith(("gan_core.runs", "gan_core.insight", "gan_core.playground", "gan_core.restore"))}
    assert upward == set()


def test_the_library_never_imports_streamlit_and_pages_never_import_torch():
    assert third_party(REPO, "gan_core", "streamlit") == []
    assert third_party(REPO, "pages", "torch") == [] and third_party(REPO, "app", "torch") == []


def test_the_rule_catches_an_upward_import_hidden_in_a_function(tmp_path):
    """The checker itself: a function-level import from engine up into runs is a breach and closes a circle."""
    for folder in ("gan_core/engine", "gan_core/runs"):
        (tmp_path / folder).mkdir(parents=True)
        (tmp_path / folder / "__init__.py").write_text("")
    (tmp_path / "gan_core/__init__.py").write_text("")
    (tmp_path / "gan_core/engine/trainer.py").write_text("def f():\n    from ..runs.store import RunStore\n")
    (tmp_path / "gan_core/runs/store.py").write_text("from ..engine.trainer import f\n")
    edges = graph(tmp_path)
    assert breaches(edges) == ["gan_core.engine.trainer (engine) imports gan_core.runs.store (runs)"]
    assert circles(edges) == [["gan_core.engine.trainer", "gan_core.runs.store"]]


def test_only_the_one_task_map_builds_a_trainer():
    """Start, continue, the queue and every DDP rank go through runs/trainers.make_trainer (a queued inpainting run
    once trained as a noise -> image GAN because the queue built Trainer itself)."""
    builders = set()
    for name, path in modules().items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call) and getattr(node.func, "id", getattr(node.func, "attr", "")).endswith("Trainer"):
                builders.add(name)
    assert builders <= {"gan_core.runs.trainers"}


def test_no_library_module_is_over_500_lines():
    long = {n: len(p.read_text().splitlines()) for n, p in modules().items() if n.startswith("gan_core")}
    assert {n: lines for n, lines in long.items() if lines > 500} == {}


if __name__ == "__main__":
    root = Path(sys.argv[1]).resolve() if len(sys.argv) > 1 else REPO
    edges = graph(root)
    lib = [n for n in edges if n.startswith("gan_core")]
    print(f"{root}: {len(lib)} gan_core modules on {floors(edges)} floors")
    for group in circles(edges):
        print(f"circle of {len(group)}: {', '.join(group)}")
    top = graph(root, top_level_only=True)
    print(f"top-level imports only: {floors(top)} floors, circles {circles(top)}")
    print(f"upward imports: {len(breaches(edges))}")
    for line in breaches(edges):
        print("  " + line)
