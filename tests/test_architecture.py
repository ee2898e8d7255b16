"""The package's shape: no import cycle, and no import from a lower layer to a higher one
(the README's "Architecture" section lists the layers in this order). Imports inside
functions count too."""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).parents[1] / "kdzoo"

#: Layers, lowest first: a module may import only from its own layer or a lower one.
LAYERS = [
    (
        "kdzoo.files",
        "kdzoo.validation",
        "kdzoo.defaults",
        "kdzoo.results",
        "kdzoo.optional",
        "kdzoo.determinism",
        "kdzoo._lazy",
        "kdzoo.backend",
    ),
    (
        "kdzoo.losses",
        "kdzoo.models",
        "kdzoo.distribute",
        "kdzoo._keras_compat",
        "kdzoo.labels",
        "kdzoo.tasks",
    ),
    ("kdzoo.data",),
    ("kdzoo.datasets", "kdzoo.families"),
    ("kdzoo.distillation",),
    ("kdzoo.evaluation",),
    ("kdzoo.serving",),
    ("kdzoo.recipe",),
    (
        "kdzoo.demo",
        "kdzoo.studies",
        "kdzoo.zoo_strength",
        "kdzoo.label_scarce",
        "kdzoo.sst2_transfer",
        "kdzoo.privileged",
        "kdzoo.function_matching",
        "kdzoo.fusion_strong_teacher",
        "kdzoo.tabular_views",
        "kdzoo.task_study",
        "kdzoo.verify",
        "kdzoo.experiment",
    ),
    ("kdzoo.cli",),
]


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _layer(module: str) -> int:
    for index, prefixes in enumerate(LAYERS):
        if any(module == p or module.startswith(p + ".") for p in prefixes):
            return index
    raise AssertionError(f"{module} is in no layer of tests/test_architecture.py")


def _imports(path: Path) -> set[str]:
    """The kdzoo modules ``path`` imports (module-level and inside functions)."""
    module = _module_name(path)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("kdzoo")}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parent, *([base] if base else [])])
            if not base.startswith("kdzoo"):
                continue
            for alias in node.names:  # "from kdzoo import data" imports kdzoo.data
                candidate = f"{base}.{alias.name}"
                exists = (PACKAGE.parent / candidate.replace(".", "/")).with_suffix(".py")
                is_package = PACKAGE.parent / candidate.replace(".", "/") / "__init__.py"
                found.add(candidate if exists.is_file() or is_package.is_file() else base)
    return found


MODULES = {
    _module_name(p): _imports(p)
    for p in sorted(PACKAGE.rglob("*.py"))
    if p != PACKAGE / "__init__.py"  # lazy attribute table only
}


@pytest.mark.parametrize("module", sorted(MODULES))
def test_no_module_imports_a_higher_layer(module):
    upward = sorted(m for m in MODULES[module] if m != "kdzoo" and _layer(m) > _layer(module))
    assert not upward, f"{module} (layer {_layer(module)}) imports {upward}"


def test_no_import_cycle():
    graph = {m: {i for i in deps if i in MODULES and i != m} for m, deps in MODULES.items()}
    # A package's __init__ re-exporting its submodules is not a cycle with them.
    for module, deps in graph.items():
        graph[module] = {d for d in deps if not module.startswith(d + ".")}
    state, stack = {}, []

    def visit(node):
        state[node] = "open"
        stack.append(node)
        for dep in sorted(graph[node]):
            if state.get(dep) == "open":
                cycle = stack[stack.index(dep) :] + [dep]
                raise AssertionError(f"import cycle: {' -> '.join(cycle)}")
            if dep not in state:
                visit(dep)
        stack.pop()
        state[node] = "done"

    for module in sorted(graph):
        if module not in state:
            visit(module)


def test_the_layers_cover_every_module():
    for module in MODULES:
        _layer(module)
