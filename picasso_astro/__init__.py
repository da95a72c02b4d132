"""picasso_astro: resolved galaxy property maps from SDSS ugriz images.

PICASSO (Buck & Wolf 2021, arXiv:2111.01154): a U-Net with quantized-regression
heads predicts per-pixel star-formation rate, HI, gas and stellar metallicity
and stellar mass surface density from SDSS u, g, r, i, z images.
"""

from ._package import __version__
from .catalogue import predict_to_files
from .exceptions import PicassoInputError, PicassoModelError, PicassoWarning
from .hub import load_model
from .maps import PropertyMaps
from .predict import predict

__all__ = [
    "PicassoInputError",
    "PicassoModelError",
    "PicassoWarning",
    "PropertyMaps",
    "__version__",
    "load_model",
    "predict",
    "predict_to_files",
]
