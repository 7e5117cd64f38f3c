"""MkDocs hook: the Sphinx roles of the package's docstrings as links in the API reference.

The docstrings name other objects as ``:func:`name```, ``:class:`~module.Name``` and so on.
mkdocstrings renders these as the role's text followed by the name in code. This hook turns each
into the name alone, linked to its entry in the reference when the name is a full path that the
reference renders (the link is resolved by mkdocs-autorefs; other names stay plain code), and a
paragraph ending in ``::`` (which introduces a literal block) ends in ``:``.
"""

import re

_ROLE = re.compile(r":(?:func|class|meth|attr|mod|data|exc|obj|const):<code>(~?)([^<]+)</code>")
_LITERAL_INTRO = re.compile(r"::</p>")


def _replace(match):
    short, name = match.group(1), match.group(2).strip()
    shown = name.rsplit(".", 1)[-1] if short else name
    if "." in name and name.startswith("wavegan_tf"):
        return f'<autoref identifier="{name}" optional><code>{shown}</code></autoref>'
    return f"<code>{shown}</code>"


def on_page_content(html, page, config, files):
    """Rewrites the roles in a page's HTML before mkdocs-autorefs resolves its references."""
    html = _ROLE.sub(_replace, html)
    return _LITERAL_INTRO.sub(":</p>", html)
