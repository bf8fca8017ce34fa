"""The import rule of docs/architecture.md: inference never loads the training stack, nothing but the CLI loads the CLI."""
from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PACKAGE = REPO / "selfdesc"
#: the packages of the training side
TRAINING_SIDE = ("training", "methods", "losses")
#: (importing module, imported module) pairs the rule allows outside the training side
EXCEPTIONS = {("selfdesc.weights", "selfdesc.training.checkpoint")}  # reading a training checkpoint, not a model file


def _imports() -> list[tuple[str, str]]:
    """``(module, imported selfdesc module)`` for every import statement in the package, lazy ones included."""
    out = []
    for path in sorted(PACKAGE.rglob("*.py")):
        module = ".".join(path.relative_to(REPO).with_suffix("").parts).removesuffix(".__init__")
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            elif isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            else:
                continue
            out += [(module, name) for name in names if name.startswith("selfdesc.")]
    return out


def _package(module: str) -> str:
    """``selfdesc.features.sift`` -> ``features``; ``selfdesc`` -> ``""``."""
    return module.split(".")[1] if "." in module else ""


def test_the_scan_sees_the_imports_it_checks():
    found = set(_imports())
    assert ("selfdesc.methods.hndesc", "selfdesc.models.backbones") in found
    assert ("selfdesc.weights", "selfdesc.training.checkpoint") in found  # a lazy import, inside a function


def test_inference_code_never_imports_the_training_side():
    bad = [
        (module, name)
        for module, name in _imports()
        if _package(module) not in (*TRAINING_SIDE, "cli") and _package(name) in TRAINING_SIDE and (module, name) not in EXCEPTIONS
    ]
    assert bad == []


def test_only_the_command_line_imports_the_command_line():
    bad = [(module, name) for module, name in _imports() if _package(name) == "cli" and _package(module) not in ("cli", "__main__")]
    assert bad == []


def test_loading_and_running_shipped_models_leaves_the_training_stack_unloaded():
    code = """
import json, sys
import numpy as np
import selfdesc.api, selfdesc.features
image = np.random.default_rng(0).uniform(size=(48, 64, 3)).astype(np.float32)
for name in ("default", "tpr", "residual-sift", "sift"):
    selfdesc.load(name, max_keypoints=50).extract(image)
selfdesc.load_matcher("sift")
print(json.dumps(sorted(m for m in sys.modules if m.startswith("selfdesc.") and m.split(".")[1] in ("training", "methods", "losses", "cli"))))
"""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=300)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.splitlines()[-1]) == []
