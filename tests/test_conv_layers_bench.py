"""bench/conv_layers.py: each product of D's five convolutions timed both ways."""

from support import run_bench


def test_every_product_of_every_layer_timed_both_ways_with_sums():
    result = run_bench("conv_layers.py", "--model_dim", "2", "--batch_size", "2",
                       "--slice_len", "1024")
    assert result.returncode == 0, result.stderr
    rows = [line.split() for line in result.stdout.splitlines() if "->" in line]
    assert [row[0] for row in rows[::3]] == ["1024x1->256x2", "256x2->64x4", "64x4->16x8",
                                             "16x8->4x16", "4x16->1x32"]
    assert [row[1] for row in rows] == ["forward", "input_gradient", "kernel_gradient"] * 5
    values = dict(pair.split("=", 1) for pair in result.stdout.strip().splitlines()[-1].split())
    standard, rule, best = (float(values[k]) for k in ("standard_ms", "rule_ms", "best_ms"))
    # The faster of the two ways, product by product, is never slower than either plan.
    assert 0 < best <= min(standard, rule)
    assert values["cpu_kind"] in ("avx512", "avx2", "none")
