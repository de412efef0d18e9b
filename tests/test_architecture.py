"""ARCHITECTURE.md's layer table matches the package: every import points to a strictly lower layer."""

import ast
import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "ddim_book"


def documented_layers() -> dict[str, int]:
    layers = {}
    for line in (REPO / "ARCHITECTURE.md").read_text().splitlines():
        match = re.match(r"\|\s*(\d+)\s*\|([^|]*)\|", line)
        if match:
            for unit in re.findall(r"`([^`]+)`", match.group(2)):
                layers[unit] = int(match.group(1))
    return layers


def unit_of(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[0] == "ddim_book" else None


def imports_by_unit() -> dict[str, set[str]]:
    edges: dict[str, set[str]] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        if "_data" in path.parts:
            continue
        unit = unit_of(".".join(path.relative_to(REPO).with_suffix("").parts).removesuffix(".__init__"))
        if unit is None:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            targets = []
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("ddim_book"):
                targets = [f"ddim_book.{a.name}" for a in node.names] if node.module == "ddim_book" else [node.module]
            elif isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            for target in targets:
                dep = unit_of(target)
                if dep and dep != unit:
                    edges.setdefault(unit, set()).add(dep)
        edges.setdefault(unit, set())
    return edges


def test_every_unit_is_documented_once():
    layers, edges = documented_layers(), imports_by_unit()
    assert sorted(edges) == sorted(layers), "units in the package and in ARCHITECTURE.md's layer table differ"


def test_every_import_points_down():
    layers = documented_layers()
    wrong = [
        f"{unit} (layer {layers[unit]}) imports {dep} (layer {layers[dep]})"
        for unit, deps in imports_by_unit().items()
        for dep in sorted(deps)
        if layers[dep] >= layers[unit]
    ]
    assert not wrong, "imports that do not point to a lower layer:\n" + "\n".join(wrong)


def test_sampling_a_shipped_model_does_not_import_the_trainer():
    code = (
        "import sys, torch; from ddim_book import pretrained, samplers; m, s = pretrained.load('mnist'); "
        "samplers.ddim_sample(m, s, torch.randn(2, 1, 28, 28), 2, progress=False); "
        "print(sorted(k for k in sys.modules if k.startswith('ddim_book.training')))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"
