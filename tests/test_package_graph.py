"""The packages depend one way: study -> trainables -> rankae, study -> analysis -> rankae,
search_spaces is data, tools (beside the method) import none of them; rankae imports no Ray.
Read from the source's imports (function-level and type-checking ones included), so a lazy
import cannot hide a cycle. Within the packages, no module imports one that imports it back,
at any depth (a function-level import counts: it is how a circle hides)."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("rankae", "trainables", "study", "analysis", "search_spaces", "tools")
ALLOWED = {
    "tools": set(),
    "rankae": {"tools"},  # FID's Inception weights, built offline
    "search_spaces": set(),
    "trainables": {"rankae"},
    "analysis": {"rankae", "tools"},
    "study": {"rankae", "trainables", "analysis", "search_spaces", "tools"},
}


def imported_modules(package: str) -> dict[str, set[str]]:
    """Top-level module names each file of `package` imports (relative imports resolved)."""
    out = {}
    for path in sorted((ROOT / package).rglob("*.py")):
        names = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom):
                names.add(package if node.level else (node.module or "").split(".")[0])
        out[str(path.relative_to(ROOT))] = names
    return out


def test_each_package_imports_only_the_packages_below_it() -> None:
    wrong = {
        file: sorted(names & set(PACKAGES) - ALLOWED[package] - {package})
        for package in PACKAGES
        for file, names in imported_modules(package).items()
    }
    assert {file: found for file, found in wrong.items() if found} == {}


def test_the_package_graph_has_no_cycle() -> None:
    edges = {
        package: set().union(*imported_modules(package).values()) & set(PACKAGES) - {package}
        for package in PACKAGES
    }
    done: set[str] = set()

    def visit(package: str, path: tuple[str, ...]) -> None:
        assert package not in path, f"import cycle: {' -> '.join((*path, package))}"
        if package not in done:
            for below in edges[package]:
                visit(below, (*path, package))
            done.add(package)

    for package in PACKAGES:
        visit(package, ())


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def runtime_imports(tree: ast.AST) -> list[ast.Import | ast.ImportFrom]:
    """Every import that can run: at module level or in a function, not under TYPE_CHECKING
    (annotations only, never executed)."""
    found: list[ast.Import | ast.ImportFrom] = []

    def walk(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and ast.unparse(child.test) == "TYPE_CHECKING":
                for other in child.orelse:
                    walk(other)
            elif isinstance(child, ast.Import | ast.ImportFrom):
                found.append(child)
            else:
                walk(child)

    walk(tree)
    return found


def module_imports() -> dict[str, set[str]]:
    """Each project module -> the project modules it imports (relative imports resolved; `from
    package import name` is the module `package.name` where that is one, else `package`)."""
    paths = {module_name(p): p for package in PACKAGES for p in (ROOT / package).rglob("*.py")}
    edges: dict[str, set[str]] = {}
    for name, path in paths.items():
        here = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
        targets = set()
        for node in runtime_imports(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                targets |= {alias.name for alias in node.names}
                continue
            base = node.module or ""
            if node.level:
                base = ".".join(here[: len(here) - node.level + 1] + ([base] if base else []))
            targets |= {f"{base}.{a.name}" if f"{base}.{a.name}" in paths else base
                        for a in node.names}  # fmt: skip
        edges[name] = {t for t in targets if t in paths and t != name}
    return edges


def test_no_module_imports_one_that_imports_it_back() -> None:
    edges = module_imports()
    assert {"study.spec", "study.plans.escalation", "study.plans"} <= set(edges)
    assert "study.plans" in edges["study.spec"]  # the resolution sees real edges
    done: set[str] = set()

    def visit(module: str, path: tuple[str, ...]) -> None:
        assert module not in path, f"import circle: {' -> '.join((*path, module))}"
        if module not in done:
            for below in sorted(edges[module]):
                visit(below, (*path, module))
            done.add(module)

    for module in sorted(edges):
        visit(module, ())


def test_the_model_package_imports_no_ray() -> None:
    users = [file for file, names in imported_modules("rankae").items() if "ray" in names]
    assert users == []


def test_planning_a_study_imports_no_ray() -> None:
    """Ray reads its node-address switch when imported (study/service/launch.py sets it first), so
    resolving a study from the CLI must not import it on the way."""
    import subprocess
    import sys

    check = (
        "import sys; from study.run import resolve_spec; "
        "resolve_spec({'name': 'linear_alpha_sweep', 'smoke': True}); "
        "print('ray' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", check], cwd=ROOT, capture_output=True, text=True)
    assert out.stdout.strip() == "False", out.stderr[-2000:]


def test_inside_the_study_service_planning_adapters_and_running_depend_one_way() -> None:
    """plans (no Ray) <- adapters (Ray Tune, MLflow) <- service <- run: a folder imports
    none of the ones after it, and the CLI is imported by nothing."""
    edges = module_imports()
    above = {
        "study.plans": ("study.adapters", "study.service", "study.spec", "study.run"),
        "study.adapters": ("study.service", "study.studies", "study.run"),
        "study.service": ("study.studies", "study.run"),
    }
    wrong = {
        module: sorted(t for t in targets if t.startswith(above[folder]))
        for module, targets in edges.items()
        for folder in above
        if module.startswith(folder)
    }
    assert {module: found for module, found in wrong.items() if found} == {}
    assert [m for m, targets in edges.items() if "study.run" in targets] == []
