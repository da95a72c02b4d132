"""Exceptions and warnings raised by picasso_astro."""

from astropy.utils.exceptions import AstropyUserWarning

__all__ = [
    "AssumedPSFWarning",
    "FootprintAtEdgeWarning",
    "InferredUnitWarning",
    "LargeImageWarning",
    "MostlyMaskedWarning",
    "OutOfRangeWarning",
    "PicassoInputError",
    "PicassoModelError",
    "PicassoWarning",
    "PointSourceWarning",
    "TargetNotFoundWarning",
    "TargetWarning",
]


class PicassoInputError(ValueError):
    """An input image, file or argument cannot be used as given.

    The message says what was wrong and what to do about it.
    """


class PicassoModelError(ValueError):
    """A model file or configuration is missing, inconsistent or corrupted."""


class PicassoWarning(AstropyUserWarning):
    """Something was done to the input that the user should know about."""


class TargetWarning(PicassoWarning):
    """Something looks wrong with a target galaxy; its maps may not be its own."""


class TargetNotFoundWarning(TargetWarning):
    """No source at the target's position: blank sky, or a wrong position."""


class PointSourceWarning(TargetWarning):
    """The target is point-like: a star (or an unresolved nucleus), not a galaxy."""


class MostlyMaskedWarning(TargetWarning):
    """Most of a galaxy's map is off the image, bad, or covered by other sources."""


class FootprintAtEdgeWarning(TargetWarning):
    """The target's footprint reaches the cutout's edge: the galaxy is larger."""


class LargeImageWarning(TargetWarning):
    """An image given as a cutout is as large as a whole SDSS frame."""


class OutOfRangeWarning(TargetWarning):
    """Part of the galaxy is brighter than anything the model was trained on."""


class InferredUnitWarning(PicassoWarning):
    """An image's flux unit was inferred (no BUNIT), not read from its header."""


class AssumedPSFWarning(PicassoWarning):
    """A band's PSF could not be measured or read, and a typical one was assumed."""
