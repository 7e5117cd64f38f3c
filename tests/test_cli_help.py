"""``--help`` of every program exits with status 0, so that ``cmd --help && ...`` works."""

import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
# train.py, generate.py and evaluate.py (and their console commands) are run with --help in
# test_packaging.py and test_train_cli.py.
SCRIPTS = ("bench/train_step.py", "bench/generate.py", "bench/mixed_precision.py",
           "bench/memory_peak.py")


def _run(*args):
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, cwd=ROOT,
                          env=ENV, timeout=120)


@pytest.mark.parametrize("script", SCRIPTS)
def test_help_exits_0_after_printing_the_flags(script):
    result = _run(script, "--help")
    assert result.returncode == 0, result.stderr
    assert f"{script}:" in result.stdout and "--helpfull" in result.stdout


def test_every_help_flag_exits_0_and_a_bad_flag_still_exits_1():
    for flag in ("--helpfull", "--helpxml"):
        result = _run("generate.py", flag)
        assert result.returncode == 0, flag
        assert "seed" in result.stdout, flag
    bad = _run("generate.py", "--no_such_flag")
    assert bad.returncode == 1
    assert "Unknown command line flag 'no_such_flag'" in bad.stderr


def test_package_help_exits_0():
    result = _run("-m", "wavegan_tf", "--help")
    assert result.returncode == 0 and "wavegan-train" in result.stdout
