"""bench/memory_peak.py: the live tensors at a training step's memory peak, from the profiler."""

from support import run_bench


def _run(*flags, unset=()):
    return run_bench("memory_peak.py", *flags, timeout=300, unset=unset)


def test_prints_the_live_peak_and_the_largest_groups_alive_there():
    # Without TF_CPU_ALLOCATOR_USE_BFC from the test session: the script chooses the allocator
    # that records allocations itself (on AMD and ARM CPUs the default one records none).
    result = _run("--model_dim", "4", "--batch_size", "8", "--top", "2", "--convs", "standard",
                  unset=("TF_CPU_ALLOCATOR_USE_BFC",))
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    values = dict(pair.split("=") for pair in lines[-1].split())
    before, peak, rss = (float(values[k]) for k in
                         ("live_before_mib", "live_peak_mib", "peak_rss_mib"))
    assert 0 < before <= peak < rss
    groups = lines[lines.index("alive at the peak (MiB, op, shape), step tensors only:") + 1:-1]
    assert 1 <= len(groups) <= 2 and int(values["groups_at_peak"]) >= len(groups)
    sizes = [float(line.split()[0]) for line in groups]
    assert sizes == sorted(sizes, reverse=True) and all("[" in line for line in groups)
    assert "d=4 batch=8 n_critic=1 conv=standard" in lines[0]


def test_a_count_below_one_is_refused_naming_the_flag():
    result = _run("--top", "0")
    assert result.returncode != 0
    assert "--top must be >= 1, got 0" in result.stderr
