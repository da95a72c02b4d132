"""Sphinx configuration for picasso_astro."""

import datetime
import os
from importlib.metadata import version as _version

from sphinx_astropy.conf.v2 import *  # noqa: F403

project = "picasso_astro"
author = "The picasso_astro developers"
copyright = f"{datetime.date.today().year}, {author}"
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

# -- Examples (sphinx-gallery) ----------------------------------------------
# Every example in ../examples runs in every build, with the bundled default
# model. Figures come from matplotlib's non-interactive Agg backend.
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

import matplotlib  # noqa: E402

matplotlib.use("Agg")
sys.path.insert(0, str(Path(__file__).parent))

extensions.append("sphinx_gallery.gen_gallery")
sphinx_gallery_conf = {
    "examples_dirs": "../examples",
    "gallery_dirs": "generated/examples",
    "filename_pattern": r"plot_",
    "within_subsection_order": "_gallery_order.ExampleOrder",
    "abort_on_example_error": True,
    "only_warn_on_example_error": False,
    "download_all_examples": False,
    "remove_config_comments": True,
    "matplotlib_animations": False,
    "image_scrapers": ("matplotlib",),
    "reset_modules": ("matplotlib",),
    "default_thumb_file": None,
    "show_signature": False,
}

# The real-frame examples fetch SDSS frames from the Science Archive Server
# with astropy.utils.data.download_file(url, cache=True). Where the project's
# copies of those frames exist (../shared/data beside the checkout, as in CI),
# they are imported into astropy's download cache under their SAS URLs first,
# so the build needs no network. Without them the examples download the frames.
from picasso_astro.sdss import SAS_FRAME_URL  # noqa: E402

_SHARED_SDSS = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "sdss"


def _import_sdss_frames_to_cache():
    import warnings

    from astropy.utils.data import (
        CacheMissingWarning,
        import_file_to_cache,
        is_url_in_cache,
    )

    run, camcol, field = 4510, 4, 30
    folder = _SHARED_SDSS / f"field-{run:06d}-{camcol}-{field:04d}"
    if not folder.is_dir():
        return
    for band in "ugriz":
        url = SAS_FRAME_URL.format(band=band, run=run, camcol=camcol, field=field)
        path = folder / f"frame-{band}-{run:06d}-{camcol}-{field:04d}.fits.bz2"
        with warnings.catch_warnings():
            # A first use creates the cache, and says so.
            warnings.simplefilter("ignore", CacheMissingWarning)
            if path.is_file() and not is_url_in_cache(url):
                import_file_to_cache(url, str(path), remove_original=False)


_import_sdss_frames_to_cache()
