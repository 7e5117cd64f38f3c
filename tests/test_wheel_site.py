"""Where --web finds the drum machine page: an installed wheel's web_assets/ first, then the
source checkout's web/, and what it says when either lacks a part (tests/test_packaging.py
builds and installs the wheel itself)."""

import os
import re

import pytest

from wavegan_tf.serving import web_export, web_sources


def _web_dir(root, pages=True, runtime=True):
    """A web/ folder as in a checkout (after npm ci when ``runtime``), files named after their
    path."""
    paths = ((web_sources.source_page_paths(str(root)) if pages else [])
             + (web_sources.source_runtime_paths(str(root)) if runtime else []))
    for path in paths:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as f:
            f.write(os.path.relpath(path, root))
    return str(root)


def _read(path):
    with open(path) as f:
        return f.read()


def test_copy_web_assets_lays_out_the_page_and_the_runtime_as_the_package_reads_them(
        tmp_path):
    web = _web_dir(tmp_path / "web")
    assets = str(tmp_path / "assets")
    assert web_sources.copy_web_assets(web, assets) == []
    pages = web_sources.packaged_page_paths(assets)
    runtime = web_sources.packaged_runtime_paths(assets)
    assert [_read(p) for p in pages] == [f"page/{name}" for name in web_sources.PAGE_FILES]
    assert [_read(p) for p in runtime] == [f"node_modules/{name}"
                                           for name in web_sources.RUNTIME_FILES]
    assert {os.path.dirname(p) for p in runtime} == {os.path.join(assets, "vendor")}


def test_copy_web_assets_copies_a_part_whole_or_not_at_all(tmp_path):
    web = _web_dir(tmp_path / "web")
    os.remove(web_sources.source_runtime_paths(web)[1])
    assets = str(tmp_path / "assets")
    assert web_sources.copy_web_assets(web, assets) == \
        [web_sources.source_runtime_paths(web)[1]]
    assert all(os.path.isfile(p) for p in web_sources.packaged_page_paths(assets))
    assert not os.path.exists(os.path.join(assets, web_sources.VENDOR_SUBDIR))


def test_the_installed_package_s_assets_come_before_the_checkout(tmp_path, monkeypatch):
    assets = str(tmp_path / "assets")
    web_sources.copy_web_assets(_web_dir(tmp_path / "web"), assets)
    checkout = _web_dir(tmp_path / "checkout")
    monkeypatch.setattr(web_export, "PACKAGED_WEB_DIR", assets)
    monkeypatch.setattr(web_export, "WEB_SOURCE_DIR", checkout)
    pages, runtime = web_export.runtime_paths()
    assert pages == web_sources.packaged_page_paths(assets)
    assert runtime == web_sources.packaged_runtime_paths(assets)
    # Given a web/ folder, that one is read.
    assert web_export.runtime_paths(checkout)[1] == web_sources.source_runtime_paths(checkout)
    # Without packaged assets (a checkout, an editable install), the checkout's web/.
    monkeypatch.setattr(web_export, "PACKAGED_WEB_DIR", str(tmp_path / "none"))
    assert web_export.runtime_paths() == (web_sources.source_page_paths(checkout),
                                          web_sources.source_runtime_paths(checkout))


def test_a_checkout_without_npm_ci_is_told_to_run_it(tmp_path, monkeypatch):
    checkout = _web_dir(tmp_path / "web", runtime=False)
    monkeypatch.setattr(web_export, "PACKAGED_WEB_DIR", str(tmp_path / "none"))
    monkeypatch.setattr(web_export, "WEB_SOURCE_DIR", checkout)
    with pytest.raises(FileNotFoundError, match=re.escape(f"run `npm ci` in {checkout}")):
        web_export.runtime_paths()


@pytest.mark.parametrize("part", ["pages", "runtime"])
def test_an_installed_package_without_a_part_says_what_to_run(tmp_path, monkeypatch, part):
    web = _web_dir(tmp_path / "web", pages=part != "pages", runtime=part != "runtime")
    assets = str(tmp_path / "assets")
    web_sources.copy_web_assets(web, assets)
    monkeypatch.setattr(web_export, "PACKAGED_WEB_DIR", assets)
    monkeypatch.setattr(web_export, "WEB_SOURCE_DIR", _web_dir(tmp_path / "checkout"))
    what = "web page sources" if part == "pages" else "TensorFlow.js runtime"
    with pytest.raises(FileNotFoundError) as error:
        web_export.runtime_paths()
    message = str(error.value)
    assert what in message and "not in this installed wavegan_tf" in message
    assert "run `npm ci` in web/ of a wavegan_tf source checkout" in message
    assert "pip install ." in message


def test_neither_an_installed_page_nor_a_checkout_says_what_to_run(tmp_path, monkeypatch):
    monkeypatch.setattr(web_export, "PACKAGED_WEB_DIR", str(tmp_path / "assets"))
    monkeypatch.setattr(web_export, "WEB_SOURCE_DIR", str(tmp_path / "web"))
    with pytest.raises(FileNotFoundError, match="the drum machine page is not installed") as e:
        web_export.export_web("unused", str(tmp_path / "site"))
    assert "run `npm ci` in web/ of a wavegan_tf source checkout" in str(e.value)
    assert not os.path.exists(tmp_path / "site")
