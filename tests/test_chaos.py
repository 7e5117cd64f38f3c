"""The chaos drill (bench/chaos.py), short: 20 SIGKILLs of real train.py, generate.py,
generate.py --web and evaluate.py runs at a tiny size, with nothing lost or damaged."""

import re

from support import run_bench

COUNTERS = ("lost_checkpoints", "corrupt_files", "failed_resumes", "step_regressions",
            "lock_blocks", "bad_exports", "missing_exports", "failed_runs", "leftovers")


def test_twenty_kills_lose_nothing():
    done = run_bench("chaos.py", "--kills=20", "--seed=1", timeout=1800)
    assert done.returncode == 0, done.stderr[-3000:]
    lines = done.stdout.strip().splitlines()
    last = dict(pair.split("=") for pair in lines[-1].split())
    assert last["kills"] == "20"
    problems = "\n".join(lines[:-1])
    assert {name: last[name] for name in COUNTERS} == {name: "0" for name in COUNTERS}, problems
    kinds = re.search(r"kills by program and moment: (.*)", done.stdout).group(1)
    assert "train:" in kinds and "generate:" in kinds, kinds
