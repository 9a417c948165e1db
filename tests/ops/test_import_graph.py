"""The import graph, read from the source (ast): arrows point down, no circles.

The rule: pixels in ``upscale_worker/`` (the engine and its CLI); rows, requests and queues in ``webapp/``.
``training/`` builds models with the engine; ``bench/`` and ``tests/`` sit on top, and nothing imports them.
"""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# Each layer and the layers it may import (besides itself). Every import counts, a function's late one too.
ALLOWED = {
    "upscale_worker.engine": set(),
    "upscale_worker": {"upscale_worker.engine"},
    "webapp": {"upscale_worker.engine"},
    "training": {"upscale_worker.engine", "upscale_worker"},
    "scripts": set(),
    "bench": {"upscale_worker.engine", "upscale_worker", "webapp", "training", "scripts"},
    "tests": {"upscale_worker.engine", "upscale_worker", "webapp", "training", "scripts", "bench"},
}
THIRD_PARTY_BANNED = {
    "upscale_worker.engine": {"django", "celery", "kombu", "redis", "rest_framework", "torch"},
    "upscale_worker": {"django", "celery", "kombu", "redis", "rest_framework", "torch"},
    "webapp": {"torch", "openvino"},
}


def layer_of(module):
    """The layer a dotted module name belongs to (the longest prefix in ALLOWED), or None outside the project."""
    matches = [name for name in ALLOWED if module == name or module.startswith(name + ".")]
    return max(matches, key=len, default=None)


def module_name(path):
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path, known=()):
    """Every module ``path`` imports, as absolute dotted names: ``from a import b`` gives ``a.b`` when that is
    one of the ``known`` modules, else ``a``."""
    package = module_name(path) if path.name == "__init__.py" else module_name(path).rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(
                    [*package.split(".")[: len(package.split(".")) - node.level + 1], base]
                ).strip(".")
            for alias in node.names:
                found.add(f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base)
    return found


def project_files():
    return [
        p
        for top in ("upscale_worker", "webapp", "training", "scripts", "bench", "tests")
        for p in (ROOT / top).rglob("*.py")
    ]


def graph():
    """{module: set of project modules it imports} over every .py file of the layers."""
    modules = {module_name(p): p for p in project_files()}
    return {
        name: {m for m in imports(path, modules) if m in modules} for name, path in modules.items()
    }, modules


def cycles(edges):
    """The strongly connected components of more than one node (Tarjan's algorithm), each sorted."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(node):
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in edges.get(node, ()):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = set()
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.add(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return found


def upward(edges):
    """The arrows from one layer to another that ALLOWED does not list, as "a -> b" lines."""
    return sorted(
        f"{source} -> {target}"
        for source, targets in edges.items()
        for target in targets
        if layer_of(target) != layer_of(source) and layer_of(target) not in ALLOWED[layer_of(source)]
    )


def test_every_arrow_between_layers_points_down():
    edges, _ = graph()
    assert upward(edges) == []


def test_the_layers_themselves_form_no_circle():
    assert cycles(ALLOWED) == []


def test_no_modules_import_each_other_round_a_circle():
    edges, _ = graph()
    assert cycles(edges) == []


def test_it_finds_a_planted_arrow_up_and_a_planted_circle():
    edges, _ = graph()
    up = {
        **edges,
        "upscale_worker.engine.tiling": edges["upscale_worker.engine.tiling"] | {"webapp.jobs.queue"},
    }
    assert upward(up) == ["upscale_worker.engine.tiling -> webapp.jobs.queue"]
    assert "upscale_worker.engine.tiling" in edges["upscale_worker.engine.api"]
    round_ = {
        **edges,
        "upscale_worker.engine.tiling": edges["upscale_worker.engine.tiling"] | {"upscale_worker.engine.api"},
    }
    assert any(
        {"upscale_worker.engine.api", "upscale_worker.engine.tiling"} <= set(c) for c in cycles(round_)
    )


def test_the_engine_and_cli_know_nothing_of_the_site_nor_the_site_of_training():
    _, modules = graph()
    found = sorted(
        f"{name} imports {m}"
        for name, path in modules.items()
        for m in imports(path)
        if m.split(".")[0] in THIRD_PARTY_BANNED.get(layer_of(name), ())
    )
    assert found == []


def test_only_the_runtime_imports_openvino_in_the_engine_cli_and_site():
    _, modules = graph()
    users = sorted(
        name
        for name, path in modules.items()
        if layer_of(name) in ("upscale_worker.engine", "upscale_worker", "webapp")
        and any(m.split(".")[0] == "openvino" for m in imports(path))
    )
    assert users == ["upscale_worker.engine.runtime"]
