"""The package's layout: stages import only earlier stages, nothing inside imports the package
face, eval does not import the training loop, and modules stay short."""

import ast
import os

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGE = os.path.join(ROOT, "wavegan_tf")
# Stages, low to high: a module may import its own stage and earlier ones. A name is a
# subpackage of wavegan_tf or a top-level module of it (version, runs, __main__).
STAGES = ("version", "files", "cpu", "audio", "nets", "training", "serving", "eval", "runs",
          "cli", "__main__")
MAX_LINES = 420


def _modules():
    """``{relative path: dotted module name}`` of every module of the package."""
    modules = {}
    for folder, _, files in os.walk(PACKAGE):
        for name in files:
            if name.endswith(".py"):
                path = os.path.relpath(os.path.join(folder, name), ROOT).replace(os.sep, "/")
                parts = path[:-3].split("/")
                modules[path] = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
    return modules


MODULES = _modules()
SUBMODULES = {name.split(".")[1] for name in MODULES.values() if "." in name}


def _stage(module):
    """The stage of a dotted module name inside the package (None for the face itself)."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else None


def _read(path):
    with open(os.path.join(ROOT, path), encoding="utf-8") as f:
        return f.read()


def _imports(source, path, module):
    """``(line, imported module)`` of every import of wavegan_tf in ``source`` (the text of
    ``path``, the module ``module``), at any depth, in line order. Relative imports are
    resolved; ``from wavegan_tf import x`` names the submodule x when there is one, else the
    face."""
    tree = ast.parse(source, path)
    package = module if path.endswith("__init__.py") else module.rpartition(".")[0]
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[:len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            if base == "wavegan_tf":
                found += [(node.lineno, f"wavegan_tf.{alias.name}"
                           if alias.name in SUBMODULES else "wavegan_tf")
                          for alias in node.names]
            else:
                found.append((node.lineno, base))
    return sorted((line, name) for line, name in found
                  if name == "wavegan_tf" or name.startswith("wavegan_tf."))


def test_every_module_has_a_stage():
    unknown = sorted(path for path, module in MODULES.items()
                     if module != "wavegan_tf" and _stage(module) not in STAGES)
    assert unknown == [], f"place these in STAGES of {__file__}: {unknown}"


@pytest.mark.parametrize("path", sorted(MODULES))
def test_modules_import_no_later_stage(path):
    module = MODULES[path]
    if module == "wavegan_tf":
        return
    stage = STAGES.index(_stage(module))
    upward = [f"line {line}: {name}" for line, name in _imports(_read(path), path, module)
              if name != "wavegan_tf" and _stage(name) in STAGES
              and STAGES.index(_stage(name)) > stage]
    assert upward == [], f"{path} ({STAGES[stage]}) imports later stages: {upward}"


@pytest.mark.parametrize("path", sorted(MODULES))
def test_no_module_imports_the_package_face(path):
    module = MODULES[path]
    if module == "wavegan_tf":
        return
    face = [line for line, name in _imports(_read(path), path, module) if name == "wavegan_tf"]
    assert face == [], f"{path} imports the package face (wavegan_tf) at lines {face}"


def test_eval_does_not_import_the_training_loop():
    found = [f"{path}:{line}" for path, module in MODULES.items() if _stage(module) == "eval"
             for line, name in _imports(_read(path), path, module)
             if name == "wavegan_tf.training.loop"]
    assert found == []


def test_modules_stay_short():
    long = {}
    for path in MODULES:
        lines = len(_read(path).splitlines())
        if lines > MAX_LINES:
            long[path] = lines
    assert long == {}, f"modules over {MAX_LINES} lines: {long}"


def test_imports_inside_functions_relative_ones_and_the_face_are_seen():
    source = ("import os\nfrom wavegan_tf import train, audio\n\n\ndef f():\n"
              "    from wavegan_tf.serving import export\n    from .callbacks import x\n"
              "    import wavegan_tf\n")
    imports = _imports(source, "wavegan_tf/training/probe.py", "wavegan_tf.training.probe")
    assert imports == [(2, "wavegan_tf"), (2, "wavegan_tf.audio"), (6, "wavegan_tf.serving"),
                       (7, "wavegan_tf.training.callbacks"), (8, "wavegan_tf")]
