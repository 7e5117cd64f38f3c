"""Detecting native bfloat16, and the warnings of runs and exports where it is emulated."""

import logging

import pytest

from wavegan_tf.cpu import bfloat16_support
from wavegan_tf import runs
from wavegan_tf.cpu.bfloat16_support import bfloat16_support as support_of
from wavegan_tf.audio.demo_data import ensure_demo_dataset
from wavegan_tf.serving.export import export_generator

AVX2_CPUINFO = """processor\t: 0
vendor_id\t: GenuineIntel
model name\t: Intel(R) Xeon(R) CPU @ 2.20GHz
flags\t\t: fpu vme sse sse2 ssse3 fma sse4_1 sse4_2 avx f16c avx2 bmi2
bugs\t\t: spectre_v1

processor\t: 1
flags\t\t: fpu vme sse sse2 ssse3 fma sse4_1 sse4_2 avx f16c avx2 bmi2
"""
AVX512_BF16_CPUINFO = AVX2_CPUINFO.replace("avx2 bmi2", "avx2 avx512f avx512_bf16 bmi2")
AMX_CPUINFO = AVX2_CPUINFO.replace("avx2 bmi2", "avx2 avx512f amx_bf16 amx_tile")


# These tests set the oneDNN instruction-set limit themselves where they need one.
pytestmark = pytest.mark.usefixtures("onednn_unlimited")


def test_cpu_flags_reads_the_flags_lines_only():
    flags = bfloat16_support.cpu_flags(AVX2_CPUINFO)
    assert {"avx2", "fma", "sse4_2"} <= flags
    assert "spectre_v1" not in flags and "GenuineIntel" not in flags


@pytest.mark.parametrize("text,native,reason", [
    (AVX2_CPUINFO, False, "neither AVX512_BF16 nor AMX: bfloat16 is emulated"),
    (AVX512_BF16_CPUINFO, True, "the CPU has AVX512_BF16"),
    (AMX_CPUINFO, True, "the CPU has AMX_BF16"),
    ("processor\t: 0\n", None, "no CPU flags"),
])
def test_support_follows_the_cpu_flags(text, native, reason):
    support = support_of(cpuinfo_text=text, accelerators=[])
    assert support.native is native
    assert reason in support.reason


@pytest.mark.parametrize("limit,native", [("AVX2", False), ("avx512_core", False),
                                          ("AVX512_CORE_BF16", True), ("AVX10_1_512", True),
                                          ("ALL", True)])
def test_a_onednn_isa_limit_below_bfloat16_makes_it_emulated(monkeypatch, limit, native):
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", limit)
    support = support_of(cpuinfo_text=AVX512_BF16_CPUINFO, accelerators=[])
    assert support.native is native
    if not native:
        assert f"ONEDNN_MAX_CPU_ISA={limit.upper()}" in support.reason


def test_onednn_isa_limit_reads_the_first_variable_set():
    assert bfloat16_support.onednn_isa_limit({}) is None
    assert bfloat16_support.onednn_isa_limit({"DNNL_MAX_CPU_ISA": " avx2 "}) == (
        "DNNL_MAX_CPU_ISA", "AVX2")
    assert bfloat16_support.onednn_isa_limit({"ONEDNN_MAX_CPU_ISA": "default",
                                              "DNNL_MAX_CPU_ISA": "AVX2"}) is None


def _gpu(capability, name="/physical_device:GPU:0", device_name="NVIDIA Test GPU"):
    return {"name": name, "kind": "GPU", "device_name": device_name,
            "compute_capability": capability}


@pytest.mark.parametrize("capability,native", [((8, 0), True), ((9, 0), True), ((8, 6), True),
                                               ((12, 0), True), ((7, 5), False),
                                               ((7, 0), False), ((6, 1), False)])
def test_gpus_are_native_from_compute_capability_8_0_whatever_the_cpu(capability, native):
    support = support_of(cpuinfo_text=AVX512_BF16_CPUINFO, accelerators=[_gpu(capability)])
    assert support.native is native
    version = f"{capability[0]}.{capability[1]}"
    assert f"/physical_device:GPU:0 (NVIDIA Test GPU), compute capability {version}" in \
        support.reason
    assert ("bfloat16 is emulated" in support.reason) is not native


def test_tpus_are_native_and_unknown_gpus_are_unknown():
    assert support_of(cpuinfo_text=AVX2_CPUINFO, accelerators=["/device:TPU:0"]) == (
        True, "runs on /device:TPU:0")
    for device in ("/device:GPU:0", {"name": "/physical_device:GPU:0", "kind": "GPU"}):
        support = support_of(cpuinfo_text=AVX2_CPUINFO, accelerators=[device])
        assert support.native is None and "compute capability is unknown" in support.reason


def test_the_least_capable_of_several_gpus_counts():
    mixed = [_gpu((9, 0)), _gpu((7, 0), name="/physical_device:GPU:1")]
    support = support_of(cpuinfo_text=AVX512_BF16_CPUINFO, accelerators=mixed)
    assert support.native is False and "GPU:1" in support.reason
    assert support_of(accelerators=[_gpu((8, 0)), _gpu((9, 0))]).native is True


class _FakeDevice:
    def __init__(self, name, device_type):
        self.name, self.device_type = name, device_type


@pytest.mark.parametrize("capability,warns", [((7, 0), True), ((8, 0), False)])
def test_a_faked_gpu_of_the_machine_warns_only_below_8_0(monkeypatch, caplog, capability,
                                                         warns):
    import tensorflow as tf

    gpu = _FakeDevice("/physical_device:GPU:0", "GPU")
    monkeypatch.setattr(tf.config, "get_visible_devices",
                        lambda kind=None: [gpu] if kind == "GPU" else [])
    monkeypatch.setattr(tf.config, "list_logical_devices", lambda kind=None: [])
    monkeypatch.setattr(tf.config.experimental, "get_device_details",
                        lambda device: {"device_name": "Tesla V100-SXM2-16GB",
                                        "compute_capability": capability})
    caplog.set_level(logging.WARNING)
    support = bfloat16_support.bfloat16_support(cpuinfo_text=AVX512_BF16_CPUINFO)
    assert support.native is not warns and "Tesla V100-SXM2-16GB" in support.reason
    assert bfloat16_support.warn_if_emulated("mixed_bfloat16 training") is warns
    assert ("mixed_bfloat16 training on this machine" in caplog.text) is warns
    if warns:
        assert "compute capability 7.0" in caplog.text and "8.0 or newer" in caplog.text


def test_unreadable_cpuinfo_is_unknown(monkeypatch, tmp_path):
    monkeypatch.setattr(bfloat16_support, "CPUINFO_PATH", str(tmp_path / "missing"))
    assert support_of(accelerators=[]).native is None


@pytest.fixture
def emulated_cpu(monkeypatch, tmp_path, caplog):
    """This machine as an AVX2 CPU without accelerators; log records captured."""
    path = tmp_path / "cpuinfo"
    path.write_text(AVX2_CPUINFO)
    monkeypatch.setattr(bfloat16_support, "CPUINFO_PATH", str(path))
    monkeypatch.setattr(bfloat16_support, "_accelerators", lambda: [])
    caplog.set_level(logging.WARNING)
    return caplog


def test_warning_only_where_emulated(emulated_cpu):
    assert bfloat16_support.warn_if_emulated("mixed_bfloat16 training")
    assert "mixed_bfloat16 training on this machine" in emulated_cpu.text
    assert "slower than float32" in emulated_cpu.text
    emulated_cpu.clear()
    native = support_of(cpuinfo_text=AVX512_BF16_CPUINFO, accelerators=[])
    assert not bfloat16_support.warn_if_emulated("mixed_bfloat16 training", native)
    assert emulated_cpu.text == ""


def test_bfloat16_run_and_export_warn_at_their_start_on_an_emulating_cpu(tmp_path,
                                                                         emulated_cpu):
    data_dir = ensure_demo_dataset(str(tmp_path / "drums"), num_clips=4)
    train_dir = str(tmp_path / "run")
    config = dict(model_dim=2, batch_size=2, n_critic=1, latent_dim=8, kernel_len=5)
    runs.train(train_dir, config, dict(data_dir=data_dir, train_steps=1, save_every_secs=0,
                                       preview_every_steps=0, export=False,
                                       mixed_precision="mixed_bfloat16"), verbose=0)
    assert "mixed_bfloat16 training on this machine" in emulated_cpu.text
    emulated_cpu.clear()
    export_generator(train_dir, str(tmp_path / "float32"))
    assert "emulated" not in emulated_cpu.text
    export_generator(train_dir, str(tmp_path / "bf16"), precision="bfloat16")
    assert "A bfloat16 export on this machine" in emulated_cpu.text
