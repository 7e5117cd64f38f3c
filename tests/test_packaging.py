"""The package as pip installs it: a fresh venv, the console commands, the version."""

import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import zipfile

import numpy as np
import pytest

import wavegan_tf
from wavegan_tf.serving import web_sources

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}


def _can_build_wheels():
    """setuptools builds wheels itself (without the wheel package) from 70.1 on."""
    import setuptools

    major, minor = (int(part) for part in setuptools.__version__.split(".")[:2])
    return (major, minor) >= (70, 1)


# What setup.py copies into a wheel: the page's sources and the TensorFlow.js scripts.
WEB = os.path.join(ROOT, "web")
WEB_FILES = (web_sources.source_page_paths(WEB) + web_sources.source_runtime_paths(WEB)
             + [os.path.join(WEB, name) for name in ("package.json", "package-lock.json")])
needs_web_runtime = pytest.mark.skipif(
    not all(os.path.isfile(p) for p in web_sources.source_runtime_paths(WEB)),
    reason="the page's runtime is not installed (npm ci in web/)")


def _source_copy(tmp_path, web=True):
    """The files a build reads, copied so that the build leaves nothing in the checkout: the
    package, its build files and (``web``) the web files of :data:`WEB_FILES` there are."""
    source = tmp_path / "src"
    shutil.copytree(os.path.join(ROOT, "wavegan_tf"), source / "wavegan_tf",
                    ignore=shutil.ignore_patterns("__pycache__", "web_assets"))
    for name in ("pyproject.toml", "README.md", "setup.py", "MANIFEST.in"):
        shutil.copy(os.path.join(ROOT, name), source / name)
    for path in WEB_FILES if web else ():
        if os.path.isfile(path):
            target = source / os.path.relpath(path, ROOT)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(path, target)
    return source


def _new_venv(tmp_path):
    """A new venv that sees this interpreter's packages (TF, pip, setuptools) through a .pth
    file: ``venv --system-site-packages`` would give the base Python's, without them."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    site = subprocess.run([venv / "bin" / "python", "-c", "import sysconfig; print(sysconfig."
                           "get_paths()['purelib'])"], capture_output=True, text=True,
                          check=True)
    with open(os.path.join(site.stdout.strip(), "parent_env.pth"), "w") as f:
        f.write(sysconfig.get_paths()["purelib"] + "\n")
    return venv


def _pip_install(venv, *args, cwd):
    install = subprocess.run(
        [venv / "bin" / "python", "-m", "pip", "install", "-q", "--no-deps",
         "--no-build-isolation", "--no-index", *map(str, args)],
        capture_output=True, text=True, cwd=cwd, timeout=120)
    assert install.returncode == 0, install.stdout + install.stderr


def _venv_with_package(tmp_path, editable=False):
    """A new venv (:func:`_new_venv`) with the package pip-installed from a source copy
    without the network."""
    assert _can_build_wheels(), "building needs setuptools>=70.1 (see requirements.txt)"
    source, venv = _source_copy(tmp_path), _new_venv(tmp_path)
    _pip_install(venv, *(["-e"] if editable else []), source, cwd=tmp_path)
    return venv, source


def _build_wheel(source, out_dir, require_web=True):
    """``pip wheel`` of ``source`` into ``out_dir``: (the finished process, the wheel or None)."""
    env = {**ENV, "WAVEGAN_TF_REQUIRE_WEB": "1" if require_web else "0"}
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-v", "--no-deps", "--no-build-isolation",
         "--no-index", "-w", str(out_dir), str(source)],
        capture_output=True, text=True, cwd=source.parent, env=env, timeout=120)
    wheels = sorted(out_dir.glob("wavegan_tf-*.whl")) if out_dir.is_dir() else []
    return built, (wheels[0] if wheels else None)


def _help_flags(text):
    """The flag lines of an absl --help, without the section heading (the program path)."""
    return [line for line in text.splitlines() if not re.match(r"^\S+:$", line)]


def test_pip_install_gives_the_console_commands_and_the_version(tmp_path):
    venv, _ = _venv_with_package(tmp_path)
    work = tmp_path / "elsewhere"
    work.mkdir()
    for command, script in (("wavegan-train", "train.py"), ("wavegan-generate", "generate.py"),
                            ("wavegan-evaluate", "evaluate.py"),
                            ("wavegan-convert-tf1", "convert_tf1.py")):
        installed = subprocess.run([venv / "bin" / command, "--help"], capture_output=True,
                                   text=True, cwd=work, env=ENV, timeout=120)
        shim = subprocess.run([sys.executable, os.path.join(ROOT, script), "--help"],
                              capture_output=True, text=True, cwd=ROOT, env=ENV, timeout=120)
        assert installed.returncode == 0 and shim.returncode == 0, installed.stderr
        assert f"{venv / 'bin' / command}:" in installed.stdout, installed.stderr
        expected = _help_flags(shim.stdout)
        if command == "wavegan-train":  # outside a checkout the demo data is under the cwd
            installed_text = "\n".join(_help_flags(installed.stdout))
            assert "demo drum dataset in data/demo_drums (under the current directory)" in \
                " ".join(installed_text.split())
            expected = [line for line in expected if "demo" not in line]
        assert all(line in _help_flags(installed.stdout) for line in expected
                   if line.strip().startswith("--")), command
    version = subprocess.run([venv / "bin" / "python", "-m", "wavegan_tf", "--version"],
                             capture_output=True, text=True, cwd=work, env=ENV, timeout=120)
    assert version.stdout.strip() == f"wavegan_tf {wavegan_tf.__version__}", version.stderr
    location = subprocess.run([venv / "bin" / "python", "-c",
                               "import wavegan_tf; print(wavegan_tf.__file__)"],
                              capture_output=True, text=True, cwd=work, env=ENV, timeout=120)
    assert location.stdout.strip().startswith(str(venv)), location.stdout
    shipped = subprocess.run(
        [venv / "bin" / "python", "-c",
         "import wavegan_tf; m = wavegan_tf.load_pretrained('drums'); "
         "print(wavegan_tf.pretrained_models(), m.source, m.slice_len)"],
        capture_output=True, text=True, cwd=work, env=ENV, timeout=300)
    assert shipped.stdout.strip() == "['digits', 'drums'] pretrained:drums 16384", shipped.stderr


def test_editable_install_keeps_the_demo_data_and_the_web_page_in_the_checkout(tmp_path):
    venv, source = _venv_with_package(tmp_path, editable=True)
    result = subprocess.run(
        [venv / "bin" / "python", "-c",
         "from wavegan_tf.training import settings; print(settings.DEMO_DATA_DIR); "
         "from wavegan_tf.serving import web_sources as w; import os, wavegan_tf; "
         "print(os.path.join(os.path.dirname(wavegan_tf.__file__), 'serving', "
         "w.PACKAGED_DIRNAME))"],
        capture_output=True, text=True, cwd=tmp_path, env=ENV, timeout=120)
    demo, assets = result.stdout.split()
    assert demo == str(source / "data" / "demo_drums"), result.stderr
    # Nothing copied into the checkout: --web reads its web/ (a change to web/page shows).
    assert assets.startswith(str(source)) and not os.path.exists(assets)


def _site_files():
    """A site's files and the checkout files they copy (None: written by the export)."""
    sources = {os.path.basename(p): p for p in web_sources.source_page_paths(WEB)}
    sources.update({f"{web_sources.VENDOR_SUBDIR}/{os.path.basename(p)}": p
                    for p in web_sources.source_runtime_paths(WEB)})
    sources.update(dict.fromkeys(("manifest.json", "manifest.js", "weights.bin", "weights.js")))
    return sources


def _read_bytes(path):
    with open(path, "rb") as f:
        return f.read()


@needs_web_runtime
def test_the_wheel_writes_the_drum_machine_site_outside_the_checkout(tmp_path):
    """A wheel carries the page and its TensorFlow.js scripts (web_assets/, copied by setup.py
    from web/): installed, with no checkout on sys.path, --web writes the whole site."""
    assert _can_build_wheels(), "building needs setuptools>=70.1 (see requirements.txt)"
    built, wheel = _build_wheel(_source_copy(tmp_path), tmp_path / "wheels")
    assert built.returncode == 0 and wheel, built.stdout[-3000:] + built.stderr[-3000:]
    assets = f"wavegan_tf/serving/{web_sources.PACKAGED_DIRNAME}/"
    with zipfile.ZipFile(wheel) as archive:
        packed = {name[len(assets):]: archive.read(name) for name in archive.namelist()
                  if name.startswith(assets)}
    expected = {("page/" + name if "/" not in name else name): path
                for name, path in _site_files().items() if path}
    assert sorted(packed) == sorted(expected)
    assert all(packed[name] == _read_bytes(path) for name, path in expected.items())

    venv = _new_venv(tmp_path)
    work = tmp_path / "elsewhere"
    work.mkdir()
    _pip_install(venv, wheel, cwd=work)
    env = {name: value for name, value in ENV.items() if name != "PYTHONPATH"}
    # The installed copy is the only wavegan_tf on sys.path (the checkout is not on it).
    where = subprocess.run(
        [venv / "bin" / "python", "-c", "import os, sys, wavegan_tf; print(wavegan_tf.__file__)"
         "; print(*[p for p in sys.path if os.path.isdir(os.path.join(p or '.', 'wavegan_tf'))"
         "], sep=chr(10))"], capture_output=True, text=True, cwd=work, env=env, timeout=120)
    location, *holders = where.stdout.split("\n")[:-1]
    assert location.startswith(str(venv / "lib")) and "site-packages" in location, location
    assert holders == [os.path.dirname(os.path.dirname(location))], where.stdout
    site = work / "site"
    made = subprocess.run(
        [venv / "bin" / "wavegan-generate", "--model", "pretrained:drums", "--web", str(site),
         "--seed", "3"], capture_output=True, text=True, cwd=work, env=env, timeout=300)
    assert made.returncode == 0, made.stdout[-3000:] + made.stderr[-3000:]
    written = sorted(os.path.relpath(os.path.join(folder, name), site).replace(os.sep, "/")
                     for folder, _, names in os.walk(site) for name in names)
    assert written == sorted(_site_files())
    assert all(_read_bytes(site / name) == _read_bytes(path)
               for name, path in _site_files().items() if path)
    manifest = json.loads((site / "manifest.json").read_text())
    assert manifest["source"] == "pretrained:drums" and manifest["pads"]["seed"] == 3
    weights = sum(4 * int(np.prod(w["shape"])) for layer in manifest["layers"]
                  for w in layer["weights"])
    assert weights > 0 and os.path.getsize(site / "weights.bin") == weights


def test_a_wheel_without_the_web_runtime_is_refused_for_a_release_and_said_otherwise(
        tmp_path):
    """Without npm ci the build stops when WAVEGAN_TF_REQUIRE_WEB=1 (a release) and otherwise
    warns and builds a wheel with the page but no scripts, whose --web says what to run."""
    source = _source_copy(tmp_path)
    shutil.rmtree(source / "web" / "node_modules", ignore_errors=True)
    refused, wheel = _build_wheel(source, tmp_path / "refused")
    assert refused.returncode != 0 and wheel is None
    assert "run `npm ci` in web/ before building" in refused.stdout + refused.stderr
    built, wheel = _build_wheel(source, tmp_path / "wheels", require_web=False)
    assert built.returncode == 0 and wheel, built.stdout[-3000:] + built.stderr[-3000:]
    assert "run `npm ci` in web/ before building" in built.stdout + built.stderr
    with zipfile.ZipFile(wheel) as archive:
        packed = [name for name in archive.namelist() if "/web_assets/" in name]
    assert sorted(os.path.basename(name) for name in packed) == \
        sorted(web_sources.PAGE_FILES)


def test_version_has_one_source():
    with open(os.path.join(ROOT, "pyproject.toml"), encoding="utf-8") as f:
        pyproject = f.read()
    assert 'dynamic = ["version"]' in pyproject
    assert 'version = { attr = "wavegan_tf.version.__version__" }' in pyproject
    assert re.fullmatch(r"\d+\.\d+\.\d+", wavegan_tf.__version__)
    with open(os.path.join(ROOT, "CHANGELOG.md"), encoding="utf-8") as f:
        assert f"## [{wavegan_tf.__version__}]" in f.read()


def _pyproject():
    with open(os.path.join(ROOT, "pyproject.toml"), encoding="utf-8") as f:
        return f.read()


def test_dependencies_match_requirements_without_the_test_and_build_tools():
    with open(os.path.join(ROOT, "requirements.txt"), encoding="utf-8") as f:
        requirements = {line.strip().replace("'", '"') for line in f if line.strip()}
    declared = {entry.replace("'", '"') for entry in re.findall(r'^    "(.+)",$', _pyproject(),
                                                                  flags=re.MULTILINE)}
    tools = ("pytest", "hypothesis", "selenium", "setuptools", "wheel", "nbclient", "nbformat",
             "ipykernel", "mkdocs")  # mkdocs, mkdocs-material, mkdocstrings-python: the site
    runtime = {r for r in requirements if not r.startswith(tools)}
    # requirements.txt takes TensorFlow's CPU-only wheel where one exists; the package takes
    # the wheel that also runs on GPUs, at the same versions.
    tensorflow = {r for r in runtime if r.startswith("tensorflow")}
    assert tensorflow == {'tensorflow-cpu>=2.21,<2.22; platform_machine == "x86_64"',
                          'tensorflow>=2.21,<2.22; platform_machine != "x86_64"'}
    assert runtime - tensorflow | {"tensorflow>=2.21,<2.22"} == declared
    assert ('test = ["pytest>=8,<10", "hypothesis>=6.100,<7", "selenium>=4.20,<5"]'
            in _pyproject())


def test_the_gpu_extra_adds_the_cuda_libraries_and_the_base_install_does_not():
    pyproject = _pyproject()
    assert 'and-cuda = ["tensorflow[and-cuda]>=2.21,<2.22"]' in pyproject
    base = pyproject.split("dependencies = [", 1)[1].split("]", 1)[0]
    assert "cuda" not in base.lower() and "nvidia" not in base.lower()
    assert "tensorflow-cpu" not in base


def test_the_top_level_names_are_the_public_api():
    from wavegan_tf import runs
    from wavegan_tf.audio import data
    from wavegan_tf.nets import latent
    from wavegan_tf.serving import export
    from wavegan_tf.training import checkpoints

    namespace = {}
    exec("from wavegan_tf import *", namespace)
    assert sorted(set(namespace) - {"__builtins__"}) == sorted(wavegan_tf.__all__)
    assert wavegan_tf.audio_dataset is data.audio_dataset
    assert wavegan_tf.train is runs.train
    assert wavegan_tf.load_generator is checkpoints.load_generator
    assert wavegan_tf.export_generator is export.export_generator
    assert wavegan_tf.sample_z is latent.sample_z
    assert all(callable(getattr(wavegan_tf, name)) or name == "LOSSES"
               for name in wavegan_tf.__all__)
