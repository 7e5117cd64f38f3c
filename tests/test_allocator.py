"""wavegan_tf.cpu.allocator: the programs' C allocator settings return freed blocks to the system."""

import os
import subprocess
import sys

import pytest

from wavegan_tf import cli

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Frees 128 MiB of 4 MiB blocks, each followed by a small block that stays: under glibc's
# defaults (after one large block was freed) the big ones come from the heap and stay resident.
FRAGMENTING_PROGRAM = """
import os, sys
import numpy as np
if sys.argv[1] == "release":
    from wavegan_tf.cpu.allocator import release_freed_blocks
    print(",".join(release_freed_blocks()))
def resident_mib():
    return int(open("/proc/self/statm").read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
first = np.ones(2**22, np.float32)
del first
start = resident_mib()
blocks, kept = [], []
for _ in range(32):
    blocks.append(np.ones(2**20, np.float32))
    kept.append(np.ones(25_000, np.float32))
del blocks
print(resident_mib() - start)
"""
needs_glibc = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="glibc's malloc settings exist on Linux only")


def _run(mode, **env):
    clean = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")}
    result = subprocess.run([sys.executable, "-c", FRAGMENTING_PROGRAM, mode],
                            capture_output=True, text=True, cwd=ROOT, timeout=120,
                            env={**clean, "TF_CPP_MIN_LOG_LEVEL": "2", **env})
    assert result.returncode == 0, result.stderr
    return result.stdout.strip().splitlines()


@needs_glibc
def test_freed_blocks_leave_the_resident_set_and_stay_there_without_it():
    applied, grown = _run("release")
    assert applied == "MALLOC_MMAP_THRESHOLD_,MALLOC_ARENA_MAX"
    assert float(grown) < 16
    (grown_by_default,) = _run("glibc")
    assert float(grown_by_default) > 64


@needs_glibc
def test_a_setting_given_in_the_environment_is_kept():
    applied, _ = _run("release", MALLOC_ARENA_MAX="2")
    assert applied == "MALLOC_MMAP_THRESHOLD_"
    applied, grown = _run("release", MALLOC_MMAP_THRESHOLD_="33554432")
    assert applied == "MALLOC_ARENA_MAX"
    assert float(grown) > 64  # the user's threshold (32 MiB) keeps the 4 MiB blocks in the heap


def test_every_program_starts_with_the_settings(monkeypatch):
    calls = []
    monkeypatch.setattr(cli, "release_freed_blocks", lambda: calls.append("release"))
    monkeypatch.setattr(cli.app, "run", lambda main, flags_parser: calls.append("run"))
    cli.run_program(lambda argv: None, __name__)
    assert calls == ["release", "run"]
