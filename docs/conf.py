"""Sphinx configuration of the camactor reference manual.

Build it with ``make docs``. The command, keyword and configuration references
are generated from the code by the directives of ``_ext/camactor_docs.py``.
"""

from __future__ import annotations

import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parent
sys.path.insert(0, str(DOCS / "_ext"))
sys.path.insert(0, str(DOCS / "tutorial"))  # the tutorial's made-up SDK
sys.path.insert(0, str(DOCS.parent))  # the checkout, installed or not

from camera_core import __version__  # noqa: E402

project = "camactor"
author = "the camactor developers"
copyright = "camactor developers"
version = release = __version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.viewcode",
    "numpydoc",
    "camactor_docs",
]

root_doc = "index"
exclude_patterns = ["_build"]
default_role = "py:obj"  # `name` in docstrings links to the API when it can
nitpicky = False
smartquotes = False  # quotes in help and descriptions stay as they are

autodoc_member_order = "bysource"
autodoc_typehints = "signature"
autodoc_default_options = {"members": True, "show-inheritance": True}
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
numpydoc_xref_param_type = False

html_theme = "alabaster"
html_theme_options = {
    "description": "Astronomical cameras as CLU actors",
    "page_width": "1140px",  # room for 88-column code
}
html_static_path: list[str] = []
