"""The package as pip installs it: a fresh venv, the console commands, the version."""

import os
import re
import shutil
import subprocess
import sys
import sysconfig

import wavegan_tf

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}


def _can_build_wheels():
    """setuptools builds wheels itself (without the wheel package) from 70.1 on."""
    import setuptools

    major, minor = (int(part) for part in setuptools.__version__.split(".")[:2])
    return (major, minor) >= (70, 1)


def _source_copy(tmp_path):
    """The files a build reads, copied so that the build leaves nothing in the checkout."""
    source = tmp_path / "src"
    shutil.copytree(os.path.join(ROOT, "wavegan_tf"), source / "wavegan_tf",
                    ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(os.path.join(ROOT, name), source / name)
    return source


def _venv_with_package(tmp_path, editable=False):
    """A new venv that sees this interpreter's packages (TF, pip, setuptools) through a .pth
    file, with the package pip-installed from a source copy without the network."""
    assert _can_build_wheels(), "building needs setuptools>=70.1 (see requirements.txt)"
    source, venv = _source_copy(tmp_path), tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    site = subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_paths()"
                           "['purelib'])"], capture_output=True, text=True, check=True)
    with open(os.path.join(site.stdout.strip(), "parent_env.pth"), "w") as f:
        f.write(sysconfig.get_paths()["purelib"] + "\n")
    install = subprocess.run(
        [python, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation",
         "--no-index", *(["-e"] if editable else []), str(source)],
        capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert install.returncode == 0, install.stdout + install.stderr
    return venv, source


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
    assert shipped.stdout.strip() == "['drums'] pretrained:drums 16384", shipped.stderr


def test_editable_install_keeps_the_demo_data_in_the_checkout(tmp_path):
    venv, source = _venv_with_package(tmp_path, editable=True)
    result = subprocess.run(
        [venv / "bin" / "python", "-c",
         "from wavegan_tf.training import settings; print(settings.DEMO_DATA_DIR)"],
        capture_output=True, text=True, cwd=tmp_path, env=ENV, timeout=120)
    assert result.stdout.strip() == str(source / "data" / "demo_drums"), result.stderr


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
