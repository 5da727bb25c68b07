"""The package's layering, read from its source: no subpackage imports another one's ``_core``,
and imports only go down ``cli -> train -> robust -> attr -> metrics -> certify ->
{transforms, noise} -> _utils`` (the certified metrics read certify's certificate classes)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import captum_certified

PACKAGE = Path(captum_certified.__file__).parent

#: Layer of each subpackage: a module may import only subpackages of a strictly lower layer
#: (and its own subpackage). The package's top-level modules may import anything.
LAYERS = {
    "_utils": 0,
    "transforms": 1,
    "noise": 1,
    "certify": 2,
    "metrics": 3,
    "attr": 4,
    "robust": 5,
    "train": 6,
    "cli": 7,
    "interop": 7,
}


def imported_modules(source: str, module: str, is_package: bool) -> list[tuple[int, str]]:
    """``(line, absolute module name)`` of every import in ``source`` (function bodies and
    ``TYPE_CHECKING`` blocks included); ``module`` is the importing module's dotted name."""
    package = module if is_package else module.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                name = ".".join(base + ([node.module] if node.module else []))
            else:
                name = node.module or ""
            found.append((node.lineno, name))
            # ``from captum_certified.x import _core`` reaches _core as well
            found += [(node.lineno, f"{name}.{alias.name}") for alias in node.names]
    return found


def violations(source: str, module: str, is_package: bool = False) -> list[str]:
    """Layering violations of one module (empty when it is clean)."""
    parts = module.split(".")
    own = parts[1] if len(parts) > 2 or (is_package and len(parts) == 2) else None
    out: dict[tuple[int, str], str] = {}  # one message per import statement and kind
    for line, name in imported_modules(source, module, is_package):
        target = name.split(".")
        if target[0] != "captum_certified" or len(target) < 2 or target[1] == own:
            continue
        if "_core" in target[2:]:
            out.setdefault((line, "core"), f"{module}:{line} imports {name} (another "
                           "subpackage's _core)")  # fmt: skip
        if own is not None and target[1] in LAYERS and LAYERS[target[1]] >= LAYERS[own]:
            out.setdefault((line, "layer"), f"{module}:{line} imports {name} (not a lower "
                           f"layer than {own})")  # fmt: skip
    return list(out.values())


def package_modules() -> list[tuple[Path, str, bool]]:
    mods = []
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE.parent).with_suffix("")
        is_package = path.name == "__init__.py"
        parts = rel.parts[:-1] if is_package else rel.parts
        mods.append((path, ".".join(parts), is_package))
    return mods


def test_every_subpackage_has_a_layer():
    subpackages = {p.name for p in PACKAGE.iterdir() if (p / "__init__.py").exists()}
    assert subpackages == set(LAYERS)


def test_no_cross_core_import_and_no_upward_import():
    found = []
    for path, module, is_package in package_modules():
        found += violations(path.read_text(encoding="utf-8"), module, is_package)
    assert found == []


@pytest.mark.parametrize(
    "source, module, message",
    [
        # teeth: each forbidden form is caught
        ("from captum_certified.robust._core import geometry", "captum_certified.train._core.x",
         "_core"),
        ("from ..robust._core.base import A", "captum_certified.train.x", "_core"),
        ("from captum_certified.robust import _core", "captum_certified.train.x", "_core"),
        ("import captum_certified.metrics._core.cosine", "captum_certified.robust.x", "_core"),
        ("def f():\n    from captum_certified.train import X", "captum_certified.robust._core.x",
         "lower layer"),
        ("from captum_certified.metrics import X", "captum_certified.certify._core.x",
         "lower layer"),
        ("from captum_certified.attr import X", "captum_certified.metrics._core.x",
         "lower layer"),
        ("from captum_certified.attr import X", "captum_certified._utils.x", "lower layer"),
    ],
)  # fmt: skip
def test_the_check_catches_each_violation(source, module, message):
    (found,) = violations(source, module)
    assert message in found


@pytest.mark.parametrize(
    "source, module",
    [
        ("from captum_certified.attr._core.sampling import run", "captum_certified.attr._core.x"),
        ("from captum_certified.attr import X", "captum_certified.robust._core.x"),
        ("from captum_certified._utils.geometry import project", "captum_certified.train._core.x"),
        ("from captum_certified.metrics.kernels import flatten_cat", "captum_certified.robust.x"),
        ("from .base import A", "captum_certified.robust._core.x"),
        ("from captum_certified.certify import TopKCertificate", "captum_certified.metrics.x"),
    ],
)
def test_the_check_accepts_allowed_imports(source, module):
    assert violations(source, module) == []
