"""Sphinx configuration: Markdown pages (MyST), the API from docstrings, the CLI from argparse.

Build with ``make docs`` (warnings are errors); the site is docs/_build/html/index.html.
"""
import re

import spherepde

project = "spherepde"
author = "the spherepde developers"
release = version = spherepde.__version__

extensions = [
    "myst_parser",            # the pages are Markdown
    "sphinx.ext.autodoc",     # API reference from docstrings
    "sphinx.ext.napoleon",
    "sphinx.ext.mathjax",
    "sphinxarg.ext",          # CLI reference from spherepde.cli.build_parser
]
source_suffix = {".md": "markdown"}
exclude_patterns = ["_build"]
myst_heading_anchors = 3      # [text](page.md#section) links
autodoc_member_order = "bysource"
autodoc_default_options = {"members": True, "show-inheritance": True}
html_theme = "alabaster"
html_title = f"spherepde {release}"

_LITERAL = re.compile(r"(``.*?``)")


def _absolute_values(app, what, name, obj, options, lines):
    """Docstrings write |x| for absolute values and norms, never reST substitutions: escape
    the bars outside ``literal`` spans."""
    lines[:] = ["".join(part if part.startswith("``") else part.replace("|", r"\|") for part in _LITERAL.split(line))
                for line in lines]


def setup(app):
    app.connect("autodoc-process-docstring", _absolute_values)
