"""Sphinx configuration for picasso_astro."""

import datetime
import os
from importlib.metadata import version as _version

from sphinx_astropy.conf.v2 import *  # noqa: F403

project = "picasso_astro"
author = "The picasso_astro developers"
copyright = f"{datetime.date.today().year}, {author}"  # noqa: A001
release = _version("picasso_astro")
version = ".".join(release.split(".")[:2])

html_title = f"{project} {release}"
html_static_path = ["_static"]
exclude_patterns = ["_build", "**.ipynb_checkpoints"]

intersphinx_mapping.update(  # noqa: F405
    {
        "torch": ("https://pytorch.org/docs/stable/", None),
        "reproject": ("https://reproject.readthedocs.io/en/stable/", None),
        "photutils": ("https://photutils.readthedocs.io/en/stable/", None),
    }
)
# Builds without network (CI here) skip the cross-project links, which would
# otherwise fail with -W; set PICASSO_DOCS_ONLINE=1 to keep them.
if not os.environ.get("PICASSO_DOCS_ONLINE"):
    intersphinx_mapping.clear()  # noqa: F405
    extensions = [e for e in extensions if e != "sphinx.ext.intersphinx"]  # noqa: F405
nitpicky = False
