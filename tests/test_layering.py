"""One direction of imports: ground (golden) <- hw <- (sim, boards) <- the CLI.

Every module of every layer is parsed (no import is executed) and each `import` / `from ... import`
in it, at any depth (function-level imports included), is resolved to the layer it names. A module may
import its own layer and the layers below it only; `sim` and `boards` are siblings and do not import
each other. `ternkws/__init__.py` holds only the version, so importing it is layer-neutral.
"""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# folder in the checkout -> (package name once installed, rank)
LAYERS = {"golden": ("ternkws.golden", 0), "hw": ("ternkws.hw", 1), "sim": ("ternkws.sim", 2),
          "boards": ("ternkws.boards", 2), "ternkws": ("ternkws", 3)}
TOP_LEVEL_NAMES = {"golden", "hw", "sim", "boards"}   # what the old, pre-package imports looked like


def _modules():
    for folder, (package, _) in LAYERS.items():
        for path in sorted((ROOT / folder).rglob("*.py")):
            rel = path.relative_to(ROOT / folder).with_suffix("")
            parts = [p for p in rel.parts if p != "__init__"]
            is_package = path.name == "__init__.py"
            yield folder, path, ".".join([package, *parts]), is_package


def layer_of(module):
    """The folder (layer) of an absolute module name inside the project, or None for a third-party one."""
    parts = module.split(".")
    if parts[0] in TOP_LEVEL_NAMES:
        return parts[0]                 # an un-packaged import: reported separately
    if parts[0] != "ternkws":
        return None
    if len(parts) == 1:
        return "root"
    return parts[1] if parts[1] in TOP_LEVEL_NAMES else "ternkws"


def imports_of(path, module, is_package):
    """(line, absolute module name) of every import in the file, relative ones resolved."""
    tree = ast.parse(path.read_text(), filename=str(path))
    package = module if is_package else module.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module
            yield node.lineno, target
            if node.module is None:
                # `from . import x` / `from .. import x` name submodules: check each
                for alias in node.names:
                    yield node.lineno, f"{target}.{alias.name}"


def violations():
    found = []
    for folder, path, module, is_package in _modules():
        rank = LAYERS[folder][1]
        for line, target in imports_of(path, module, is_package):
            layer = layer_of(target)
            where = f"{path.relative_to(ROOT)}:{line} imports {target}"
            if layer is None:
                continue
            if layer in TOP_LEVEL_NAMES and not target.startswith("ternkws"):
                found.append(f"{where}: a top-level name; import it as ternkws.{target}")
            elif layer == "root":
                if folder != "ternkws" and not _only_version(path, line):
                    found.append(f"{where}: only `from ternkws import __version__` is allowed below the CLI")
            elif LAYERS[layer][1] > rank:
                found.append(f"{where}: layer {folder} must not import the higher layer {layer}")
            elif LAYERS[layer][1] == rank and layer != folder:
                found.append(f"{where}: {folder} and {layer} are sibling layers and must not import each other")
    return found


def _only_version(path, line):
    text = path.read_text().splitlines()[line - 1]
    return text.strip() == "from ternkws import __version__"


def test_no_module_imports_a_higher_layer():
    bad = violations()
    assert not bad, "imports against the layering:\n" + "\n".join(bad)


def test_package_root_imports_nothing_of_the_project():
    path = ROOT / "ternkws" / "__init__.py"
    targets = [t for _, t in imports_of(path, "ternkws", True) if layer_of(t)]
    assert targets == []


def test_every_layer_is_scanned():
    seen = {folder for folder, *_ in _modules()}
    assert seen == set(LAYERS)
    assert sum(1 for _ in _modules()) > 60


@pytest.mark.parametrize("source, bad", [
    ("from ternkws.boards.toolchain import synthesize\n", "higher layer boards"),
    ("def f():\n    from ternkws.sim import campaign\n", "higher layer sim"),
    ("from ternkws.commands import infer\n", "higher layer ternkws"),
    ("import golden.network\n", "a top-level name"),
])
def test_the_checker_catches_an_upward_import(tmp_path, monkeypatch, source, bad):
    """The test can fail: a planted upward import in hw/ is reported."""
    planted = tmp_path / "hw"
    planted.mkdir()
    (planted / "planted.py").write_text(source)
    for folder in LAYERS:
        if folder != "hw":
            (tmp_path / folder).mkdir()
    monkeypatch.setitem(globals(), "ROOT", tmp_path)
    found = violations()
    assert len(found) == 1 and bad in found[0]


def test_sibling_import_is_caught(tmp_path, monkeypatch):
    for folder in LAYERS:
        (tmp_path / folder).mkdir()
    (tmp_path / "sim" / "x.py").write_text("from ..boards import host\n")
    monkeypatch.setitem(globals(), "ROOT", tmp_path)
    found = violations()
    assert len(found) == 1 and "sibling" in found[0]
