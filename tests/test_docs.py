"""The documentation: the site builds with --strict, every page of its nav is in the output, and
README.md stays short and links only to files that exist."""

import json
import os
import re
import subprocess
import sys

import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
README = os.path.join(ROOT, "README.md")
README_MAX_BYTES = 15360


def _nav_pages(nav):
    """The Markdown files named in mkdocs.yml's nav, depth first."""
    for entry in nav:
        value = next(iter(entry.values())) if isinstance(entry, dict) else entry
        if isinstance(value, list):
            yield from _nav_pages(value)
        else:
            yield value


def test_site_builds_strict_with_every_nav_page(tmp_path):
    site = tmp_path / "site"
    build = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)],
        capture_output=True, text=True, cwd=ROOT, timeout=300,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"})
    assert build.returncode == 0, build.stdout + build.stderr
    with open(os.path.join(ROOT, "mkdocs.yml"), encoding="utf-8") as f:
        config = yaml.safe_load(f)
    assert config.get("use_directory_urls") is False  # page.md -> page.html below
    pages = list(_nav_pages(config["nav"]))
    assert "index.md" in pages and "architecture.md" in pages and "api/index.md" in pages
    for page in pages:
        assert os.path.isfile(os.path.join(ROOT, "docs", page)), page
        html = site / (page[:-len(".md")] + ".html")
        assert html.is_file(), f"{page} is in the nav but {html} was not built"
        assert html.stat().st_size > 0, html
    demo = site / "demo"
    assert (demo / "index.html").is_file() and (demo / "weights.js").is_file()
    with open(demo / "manifest.json", encoding="utf-8") as f:
        manifest = json.load(f)
    assert manifest["source"] == "pretrained:drums" and manifest["pads"]["seed"] == 0
    for name in ("index.html", "drum_machine.js"):
        with open(demo / name, "rb") as built, open(os.path.join(ROOT, "web", "page", name),
                                                   "rb") as source:
            assert built.read() == source.read(), name
    with open(site / "generating.html", encoding="utf-8") as f:
        assert 'href="demo/index.html"' in f.read()


def test_readme_is_at_most_15_kib():
    size = os.path.getsize(README)
    assert size <= README_MAX_BYTES, f"README.md is {size} bytes (at most {README_MAX_BYTES})"


def test_readme_relative_links_point_to_files():
    with open(README, encoding="utf-8") as f:
        text = f.read()
    text = re.sub(r"```.*?```", "", text, flags=re.DOTALL)  # links only, not code
    targets = re.findall(r"\]\(([^)\s]+)\)", text)
    relative = [t for t in targets if not re.match(r"^[a-z][a-z0-9+.-]*:", t) and
                not t.startswith("#")]
    assert relative, "README.md links to no file"
    for target in relative:
        path = os.path.join(ROOT, target.split("#", 1)[0])
        assert os.path.exists(path), f"README.md links to {target}, which does not exist"
