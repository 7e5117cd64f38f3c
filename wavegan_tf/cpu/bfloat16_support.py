"""Whether bfloat16 compute is native on this machine, and a warning where it is emulated.

``mixed_bfloat16`` training and the bfloat16 export pay off only where the hardware computes in
bfloat16: NVIDIA GPUs of compute capability 8.0 or newer (Ampere on), TPUs, and CPUs with the
AVX512_BF16 or AMX instructions (about 1.7-2x faster than float32 there). Older GPUs have no
bfloat16 units, and other CPUs emulate it by converting to float32 around every product, which
ran 8x slower than float32 on a 2-core AVX2 machine. Linux lists the CPU's instruction sets as
the ``flags`` line of ``/proc/cpuinfo``; elsewhere the answer is unknown and nothing is warned,
as for a GPU whose compute capability TensorFlow does not report (not an NVIDIA one).
"""

import collections
import os

import tensorflow as tf
from absl import logging

CPUINFO_PATH = "/proc/cpuinfo"
# /proc/cpuinfo flags of the x86 instructions that compute bfloat16 products natively.
NATIVE_CPU_FLAGS = ("avx512_bf16", "amx_bf16")
# oneDNN, which runs TensorFlow's matmuls and convolutions on x86 CPUs, can be limited to an
# older instruction set by these environment variables (the first one set counts) ...
ISA_LIMIT_VARIABLES = ("ONEDNN_MAX_CPU_ISA", "DNNL_MAX_CPU_ISA")
# ... and computes bfloat16 natively only at these limits (or an AVX10 one).
NATIVE_ISA_LIMITS = ("AVX512_CORE_BF16", "AVX512_CORE_FP16", "AVX512_CORE_AMX",
                     "AVX512_CORE_AMX_FP16")

BFloat16Support = collections.namedtuple("BFloat16Support", ["native", "reason"])
BFloat16Support.__doc__ = """``native``: True, False, or None when unknown; ``reason``: why."""


def cpu_flags(cpuinfo_text):
    """The set of instruction-set flags named on the ``flags`` lines of a /proc/cpuinfo text."""
    flags = set()
    for line in cpuinfo_text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "flags":
            flags.update(value.split())
    return flags


def onednn_isa_limit(environ=None):
    """``(variable, limit)`` when oneDNN is limited to an instruction set below the CPU's
    (upper case, e.g. ``"AVX2"``), else None (unset, ``ALL`` or ``DEFAULT``)."""
    environ = os.environ if environ is None else environ
    for name in ISA_LIMIT_VARIABLES:
        limit = environ.get(name, "").strip().upper()
        if limit:
            return None if limit in ("ALL", "DEFAULT") else (name, limit)
    return None


# The first NVIDIA compute capability with bfloat16 tensor cores (Ampere).
NATIVE_GPU_CAPABILITY = (8, 0)


def _accelerators():
    """The GPUs and TPUs TensorFlow uses, each as a description: ``name``, ``kind`` and, for
    GPUs, what ``tf.config.experimental.get_device_details`` tells (``device_name``,
    ``compute_capability``)."""
    found = []
    for device in tf.config.get_visible_devices("GPU"):
        try:
            details = tf.config.experimental.get_device_details(device)
        except (ValueError, RuntimeError, tf.errors.OpError):
            details = {}
        found.append({"name": device.name, "kind": "GPU", **details})
    found += [{"name": device.name, "kind": "TPU"}
              for device in tf.config.list_logical_devices("TPU")]
    return found


def _describe_accelerator(device):
    """A description dict of ``device`` (a dict as :func:`_accelerators` gives, or a name)."""
    if isinstance(device, str):
        device = {"name": device}
    device = dict(device)
    device.setdefault("kind", "TPU" if "TPU" in device["name"].upper() else "GPU")
    return device


def accelerator_support(device):
    """Whether one GPU or TPU computes bfloat16 natively, as a :data:`BFloat16Support`."""
    device = _describe_accelerator(device)
    if device["kind"] == "TPU":
        return BFloat16Support(True, f"runs on {device['name']}")
    label = device["name"] + (f" ({device['device_name']})" if device.get("device_name")
                              else "")
    capability = device.get("compute_capability")
    try:
        capability = tuple(int(part) for part in capability)
    except (TypeError, ValueError):
        return BFloat16Support(None, f"runs on {label}, whose compute capability is unknown")
    version = ".".join(str(part) for part in capability)
    if capability >= NATIVE_GPU_CAPABILITY:
        return BFloat16Support(True, f"runs on {label}, compute capability {version}")
    return BFloat16Support(False, f"runs on {label}, compute capability {version}, which has no "
                                  f"bfloat16 units (8.0 or newer has them): bfloat16 is emulated")


def bfloat16_support(cpuinfo_text=None, accelerators=None):
    """Whether bfloat16 runs natively here, as a :data:`BFloat16Support`.

    Args:
        cpuinfo_text: the text of /proc/cpuinfo (read from :data:`CPUINFO_PATH` when None).
        accelerators: the GPU/TPU devices TensorFlow uses (asked when None), each a dict with
            ``name``, ``kind`` (``"GPU"`` or ``"TPU"``) and for GPUs ``compute_capability``
            (``(major, minor)``) and ``device_name``, or a bare name (capability unknown).
            With several, the least capable one counts: replicas step together.
    """
    if accelerators is None:
        accelerators = _accelerators()
    if accelerators:
        supports = [accelerator_support(device) for device in accelerators]
        for verdict in (False, None, True):
            for support in supports:
                if support.native is verdict:
                    return support
    if cpuinfo_text is None:
        try:
            with open(CPUINFO_PATH, encoding="utf-8", errors="replace") as f:
                cpuinfo_text = f.read()
        except OSError:
            return BFloat16Support(None, f"{CPUINFO_PATH} is not readable: CPU unknown")
    flags = cpu_flags(cpuinfo_text)
    if not flags:
        return BFloat16Support(None, f"no CPU flags in {CPUINFO_PATH}: CPU unknown")
    native = [flag for flag in NATIVE_CPU_FLAGS if flag in flags]
    limited = onednn_isa_limit()
    if native and limited and not (limited[1] in NATIVE_ISA_LIMITS
                                   or limited[1].startswith("AVX10")):
        return BFloat16Support(False, f"{limited[0]}={limited[1]} keeps oneDNN from the CPU's "
                                      f"{', '.join(native).upper()}: bfloat16 is emulated")
    if native:
        return BFloat16Support(True, f"the CPU has {', '.join(native).upper()}")
    return BFloat16Support(False, "the CPU has neither AVX512_BF16 nor AMX: bfloat16 is emulated")


def warn_if_emulated(what, support=None):
    """Logs a warning that ``what`` (e.g. "mixed_bfloat16 training") will run slower than
    float32 when bfloat16 is emulated here; returns True when it warned."""
    support = support or bfloat16_support()
    if support.native is not False:
        return False
    logging.warning("%s on this machine: %s, so it runs several times slower than float32 (8x "
                    "measured on an AVX2 CPU). Use float32 here; bfloat16 pays off on GPUs of "
                    "compute capability 8.0 or newer, TPUs and CPUs with AVX512_BF16 or AMX.",
                    what, support.reason)
    return True
