"""The package's structure: no import cycle (imports inside functions included), and docstrings that
point only at documents the repository contains."""
import ast
import re
from pathlib import Path

import spherepde

PACKAGE = Path(spherepde.__file__).parent
ROOT = PACKAGE.parent


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path) -> set[str]:
    """The spherepde modules ``path`` imports anywhere in its body (functions included)."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")
                parent = parent[: len(parent) - node.level + 1]
                base = ".".join(parent + ([base] if base else []))
            if not base.startswith("spherepde"):
                continue
            for alias in node.names:  # "from . import io" names a module; "from .io import x" names its module
                candidate = f"{base}.{alias.name}"
                found.add(candidate if (ROOT / Path(*candidate.split("."))).with_suffix(".py").exists()
                          or (ROOT / Path(*candidate.split("."))).is_dir() else base)
        elif isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names if alias.name.startswith("spherepde")}
    return found - {name}


def test_no_import_cycle_in_the_package():
    graph = {module_name(p): imports(p) for p in PACKAGE.rglob("*.py")}
    # a package's __init__ re-exporting its own modules is not an edge back up
    for name, targets in graph.items():
        graph[name] = {t for t in targets if not name.startswith(t + ".") and t in graph}
    state: dict[str, int] = {}

    def visit(node, stack):
        if state.get(node) == 1:
            raise AssertionError("import cycle: " + " -> ".join(stack[stack.index(node):] + [node]))
        if state.get(node) == 2:
            return
        state[node] = 1
        for target in sorted(graph[node]):
            visit(target, stack + [node])
        state[node] = 2

    for node in sorted(graph):
        visit(node, [])


def test_docstrings_point_only_at_documents_in_the_repository():
    pattern = re.compile(r"(?:docs/[\w\-/]+\.md|theory\.md|design\.md|\.\./shared)")
    for path in PACKAGE.rglob("*.py"):
        for reference in pattern.findall(path.read_text()):
            assert reference.startswith("docs/") and (ROOT / reference).exists(), f"{path.name}: {reference}"
