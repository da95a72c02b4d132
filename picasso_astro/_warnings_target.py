"""What looks wrong with a prepared target, as warnings to give later.

Galaxies are prepared in a background thread, where warnings cannot be
given safely; the findings travel with the galaxy as ``(category name,
message)`` pairs and are given where its outcome is handled.
"""

import numpy as np

from . import exceptions
from .masks import MaskBit

__all__ = [
    "LARGE_IMAGE_PIXELS",
    "MOSTLY_MASKED",
    "flag_out_of_range",
    "target_warnings",
    "warning_category",
]

#: Images given as cutouts with a side this long look like whole frames.
LARGE_IMAGE_PIXELS = 1024
#: Pixels that are not the target for other reasons than being sky.
NOT_TARGET = MaskBit.OFF_IMAGE | MaskBit.BAD_PIXEL | MaskBit.STAR | MaskBit.NEIGHBOUR
#: A map with more than this fraction off the image, bad or under other sources.
MOSTLY_MASKED = 0.5


def warning_category(name):
    """Return the warning class of a finding's category name."""
    category = getattr(exceptions, name, None)
    if isinstance(category, type) and issubclass(category, exceptions.PicassoWarning):
        return category
    return exceptions.PicassoWarning


def target_warnings(name, bitmask, info, reference, *, whole_image=False):
    """Return ``[(category name, message), ...]`` for one prepared target.

    Parameters
    ----------
    name : str
        The galaxy, named in every message.
    bitmask : 2D int `~numpy.ndarray`
        Its `~picasso_astro.masks.MaskBit` flags.
    info : dict
        ``target_found`` and ``target_point_like`` from source detection.
    reference : `~picasso_astro.images.BandImage`
        The reference band as given (a frame, or the cutout itself).
    whole_image : bool
        The images were given as the cutout (no target position).
    """
    found = []
    if whole_image and max(reference.shape) >= LARGE_IMAGE_PIXELS:
        found.append(
            (
                "LargeImageWarning",
                f"{name}: an image of {reference.shape[1]} x {reference.shape[0]} "
                "pixels was given as one galaxy's cutout; for whole SDSS frames "
                "give the galaxies' positions (predict(..., targets=...) or "
                "picasso-predict --frames DIR --catalog FILE)",
            )
        )
    if not info.get("target_found", False):
        found.append(
            (
                "TargetNotFoundWarning",
                f"{name}: no source at the target's position (blank sky, or a "
                "wrong position): its maps are the model's prior, not a galaxy",
            )
        )
        return found
    if info.get("target_point_like", False):
        found.append(
            (
                "PointSourceWarning",
                f"{name}: the target is point-like (a star or an unresolved "
                "source), not a resolved galaxy",
            )
        )
    masked = (bitmask & int(NOT_TARGET)) != 0
    if masked.mean() > MOSTLY_MASKED:
        found.append(
            (
                "MostlyMaskedWarning",
                f"{name}: {masked.mean():.0%} of its map is off the image, bad or "
                "covered by stars and neighbours",
            )
        )
    footprint = (bitmask & int(MaskBit.SKY | NOT_TARGET)) == 0
    edge = np.concatenate(
        [footprint[0], footprint[-1], footprint[:, 0], footprint[:, -1]]
    )
    if edge.any():
        found.append(
            (
                "FootprintAtEdgeWarning",
                f"{name}: its footprint reaches the cutout's edge, so the galaxy "
                "is larger than the cutout and its totals are lower limits",
            )
        )
    return found


def flag_out_of_range(prepared, input_range):
    """Flag the pixels brighter than the model's training images held.

    Sets `~picasso_astro.masks.MaskBit.OUT_OF_RANGE` in ``prepared.bitmask``
    where the prepared r band exceeds ``input_range["r_max_nmgy"]`` and adds
    an ``OutOfRangeWarning`` to ``prepared.steps["warnings"]`` when any such
    pixel is in the target's footprint.

    Parameters
    ----------
    prepared : `~picasso_astro.preprocess.PreparedTarget`
    input_range : dict
        The model's ``input_range`` (`~picasso_astro.config.ModelConfig`).
    """
    r_max = input_range.get("r_max_nmgy")
    if r_max is None:
        return
    with np.errstate(invalid="ignore"):
        bright = prepared.images["r"].data > r_max
    bright &= ~prepared.input_mask
    if not bright.any():
        return
    prepared.bitmask[bright] |= int(MaskBit.OUT_OF_RANGE)
    on_target = int((bright & prepared.footprint).sum())
    if on_target:
        prepared.steps.setdefault("warnings", []).append(
            [
                "OutOfRangeWarning",
                f"{prepared.name}: {on_target} pixels of the galaxy are brighter "
                f"in r than {r_max:g} nanomaggies, more than the model's training "
                "images held: its maps there are unreliable (flagged OUT_OF_RANGE)",
            ]
        )
