"""The build step that puts the drum machine page into the wheel (the project is in pyproject.toml).

``build_py`` also copies ``web/page/`` (the page's sources) and the TensorFlow.js scripts that
``generate.py --web`` copies from ``web/node_modules/`` (installed by ``npm ci`` in ``web/`` at
the versions ``web/package-lock.json`` pins) into ``wavegan_tf/serving/web_assets/`` of the
build, so an installed wheel writes the site without a checkout. Nothing is copied into the
source tree, and an editable install (``pip install -e .``) reads ``web/`` of its checkout.

Run ``npm ci`` in ``web/`` before building a wheel. Without the scripts the build warns and the
wheel's ``--web`` says what to run; with ``WAVEGAN_TF_REQUIRE_WEB=1`` set (for a release) it
stops instead.
"""

import importlib.util
import os
import shutil

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = os.path.dirname(os.path.abspath(__file__))
REQUIRE_WEB_VARIABLE = "WAVEGAN_TF_REQUIRE_WEB"


def _web_sources():
    """wavegan_tf/serving/web_sources.py, loaded by path: the package's requirements (and so
    the package itself) are not importable while it builds."""
    path = os.path.join(ROOT, "wavegan_tf", "serving", "web_sources.py")
    spec = importlib.util.spec_from_file_location("_wavegan_tf_web_sources", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class BuildPyWithWebAssets(build_py):
    """build_py, then the page and its runtime into wavegan_tf/serving/web_assets/."""

    def run(self):
        super().run()
        if self.editable_mode:
            return
        sources = _web_sources()
        target = os.path.join(self.build_lib, "wavegan_tf", "serving", sources.PACKAGED_DIRNAME)
        shutil.rmtree(target, ignore_errors=True)  # what an earlier build left in build/
        missing = sources.copy_web_assets(os.path.join(ROOT, "web"), target)
        if missing:
            message = (f"the wheel has no drum machine page runtime: {missing[0]} is missing; "
                       "run `npm ci` in web/ before building, or `--web` of this wheel fails")
            if os.environ.get(REQUIRE_WEB_VARIABLE) == "1":
                raise RuntimeError(message)
            self.warn(message)


setup(cmdclass={"build_py": BuildPyWithWebAssets})
