"""Exceptions and warnings raised by picasso_astro."""

from astropy.utils.exceptions import AstropyUserWarning

__all__ = [
    "PicassoInputError",
    "PicassoModelError",
    "PicassoWarning",
]


class PicassoInputError(ValueError):
    """An input image, file or argument cannot be used as given.

    The message says what was wrong and what to do about it.
    """


class PicassoModelError(ValueError):
    """A model file or configuration is missing, inconsistent or corrupted."""


class PicassoWarning(AstropyUserWarning):
    """Something was done to the input that the user should know about."""
