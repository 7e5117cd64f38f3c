"""Shared test settings: quiet TensorFlow logs, small thread pools on the 2-core CI machine."""

import os
import shutil
import tempfile

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
# The memory tests read TensorFlow's CPU allocator statistics, which only its BFC allocator
# keeps: the default with oneDNN on Intel CPUs, chosen here on the others (AMD, ARM).
os.environ.setdefault("TF_CPU_ALLOCATOR_USE_BFC", "true")
# Runs tune their convolution plans into a cache of the test session (one for all its processes),
# never into the user's ~/.cache.
os.environ["WAVEGAN_TF_CACHE_DIR"] = tempfile.mkdtemp(prefix="wavegan_tf-test-cache-")


def pytest_sessionfinish(session, exitstatus):
    """Removes the session's plan cache."""
    del session, exitstatus
    shutil.rmtree(os.environ["WAVEGAN_TF_CACHE_DIR"], ignore_errors=True)


@pytest.fixture
def onednn_unlimited(monkeypatch):
    """Clears the oneDNN instruction-set limit of the environment (``ONEDNN_MAX_CPU_ISA``,
    ``DNNL_MAX_CPU_ISA``) for tests of the CPU kind and bfloat16 detection; those that need a
    limit set it themselves."""
    from wavegan_tf.cpu import bfloat16_support

    for name in bfloat16_support.ISA_LIMIT_VARIABLES:
        monkeypatch.delenv(name, raising=False)
