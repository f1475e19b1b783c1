"""The import graph of sendconn: no module imports itself back through others, and the layers only import
downwards — connectors, then transport, then verification (Verify delivery), with the shell and ops (the doors)
on top of them all.

    python -m tests.test_layering      # prints the graph between packages and any cycle
"""

import ast
import collections
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1] / "sendconn"
NOT_BELOW = {  # what a package must not import
    "verification": {"shell", "ops"},
    "transport": {"verification", "shell", "ops"},
    "connectors": {"transport", "verification", "shell", "ops"},
}


def modules():
    found = {}
    for path in ROOT.rglob("*.py"):
        if "migrations" in path.parts:
            continue
        name = ".".join(path.relative_to(ROOT.parent).with_suffix("").parts)
        found[name.removesuffix(".__init__")] = path
    return found


def import_graph():
    """{module: {modules of sendconn it imports, anywhere in its code}}."""
    known = modules()
    graph = collections.defaultdict(set)
    for module, path in known.items():
        package = module if path.name == "__init__.py" else module.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join(parts + ([node.module] if node.module else []))
                targets = [base] + [f"{base}.{alias.name}" for alias in node.names]
            else:
                continue
            for target in targets:
                while target and target not in known:
                    target = target.rpartition(".")[0]
                if target and target != module:
                    graph[module].add(target)
    return graph


def package_of(module):
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else parts[0]


def cycles(graph):
    """Strongly connected groups of more than one module (Tarjan)."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(node):
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in graph.get(node, ()):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for node in list(graph):
        if node not in index:
            visit(node)
    return found


def test_no_module_imports_itself_back():
    assert cycles(import_graph()) == []


def test_lower_packages_import_nothing_above_them():
    upward = sorted(
        (module, target)
        for module, targets in import_graph().items()
        for target in targets
        if package_of(target) in NOT_BELOW.get(package_of(module), ())
    )
    assert upward == []


if __name__ == "__main__":
    edges = collections.Counter(
        (package_of(module), package_of(target))
        for module, targets in import_graph().items()
        for target in targets
        if package_of(module) != package_of(target)
    )
    for (source, target), count in sorted(edges.items()):
        print(f"{source} -> {target}: {count} import(s)")
    print("cycles:", cycles(import_graph()) or "none")
