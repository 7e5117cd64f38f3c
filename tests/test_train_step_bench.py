"""bench/train_step.py: seconds per iteration and peak memory, per allocator setting."""

from support import run_bench


def _run(*flags):
    return run_bench("train_step.py", *flags, timeout=600)


def test_each_allocator_setting_is_measured_in_its_own_process():
    result = _run("--sizes", "4x2", "--modes", "default", "--convs", "auto",
                  "--allocators", "released,glibc", "--iters", "1", "--n_critic", "1")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    measured = [line for line in lines if line.startswith("wavegan ")]
    released = [line for line in measured if line.split()[5] == "released"]
    glibc = [line for line in measured if line.split()[5] == "glibc"]
    assert len(released) == 1 and len(glibc) == 1
    assert "conv=auto released is" in glibc[0]
    values = dict(pair.split("=") for pair in lines[-1].split())
    for key in ("d4b2_default", "d4b2_default_glibc"):
        assert float(values[f"{key}_sec_per_iter"]) > 0
        assert float(values[f"{key}_peak_mem_mb"]) > 100  # TensorFlow alone is several hundred
    assert float(values["d4b2_default_glibc_speedup_auto"]) > 0


def test_an_unknown_allocator_setting_is_refused_naming_the_flag():
    result = _run("--allocators", "jemalloc")
    assert result.returncode != 0
    assert "--allocators: unknown setting 'jemalloc'" in result.stderr


def test_the_tuned_plan_is_timed_beside_the_rule_with_its_tuning_seconds():
    result = _run("--sizes", "4x2", "--modes", "default", "--convs", "tuned,auto",
                  "--iters", "1", "--n_critic", "1")
    assert result.returncode == 0, result.stderr
    measured = [line for line in result.stdout.splitlines() if line.startswith("wavegan ")]
    assert len(measured) == 2
    assert "conv=tuned" in measured[0] and "(tuning " in measured[0]
    assert "conv=auto" in measured[1] and "conv=tuned released is" in measured[1]
    values = dict(pair.split("=") for pair in result.stdout.strip().splitlines()[-1].split())
    assert float(values["d4b2_default_tuned_sec_per_iter"]) > 0
    assert float(values["d4b2_default_speedup_tuned"]) > 0
