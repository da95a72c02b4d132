"""The bit mask of the maps: one bit per reason a pixel is flagged.

In the spirit of the MaNGA DAP ``_MASK`` extensions: each pixel of a map
carries an integer whose bits say why it should not be used (or used with
care). ``NDData.mask`` of every map is the boolean view of the bits in
`DO_NOT_USE`, so that astropy tools skip those pixels.
"""

import enum

import numpy as np

__all__ = ["DO_NOT_USE", "MaskBit", "bits_from_names", "describe_bits"]


class MaskBit(enum.IntFlag):
    """Why a map pixel is flagged."""

    #: Not on the input image (off the frame, or a band does not cover it).
    OFF_IMAGE = 1
    #: Outside the target's footprint: sky, or light too faint to be the galaxy.
    SKY = 2
    #: Another galaxy.
    NEIGHBOUR = 4
    #: A star: its core, halo, diffraction spikes and bleed trails.
    STAR = 8
    #: A bad input pixel (masked or not finite in a band) on the image.
    BAD_PIXEL = 16
    #: Inside the footprint, but the r-band signal-to-noise is below 3.
    LOW_SN = 32
    #: The input lies outside what the model saw in training.
    OUT_OF_RANGE = 64


#: The reasons whose pixels are not the target galaxy: ``NDData.mask`` is True there.
DO_NOT_USE = (
    MaskBit.OFF_IMAGE
    | MaskBit.SKY
    | MaskBit.NEIGHBOUR
    | MaskBit.STAR
    | MaskBit.BAD_PIXEL
)

_DESCRIPTIONS = {
    MaskBit.OFF_IMAGE: "not on the input image",
    MaskBit.SKY: "outside the target's footprint",
    MaskBit.NEIGHBOUR: "another galaxy",
    MaskBit.STAR: "a star, its halo, spikes or bleed trail",
    MaskBit.BAD_PIXEL: "bad input pixel",
    MaskBit.LOW_SN: "r-band S/N below 3 in the footprint",
    MaskBit.OUT_OF_RANGE: "input outside the model's training range",
}


def describe_bits():
    """Return ``(name, value, description)`` of every bit, lowest first."""
    return [(bit.name, int(bit), _DESCRIPTIONS[bit]) for bit in MaskBit]


def bits_from_names(*reasons):
    """Return the `MaskBit` union of reasons given by name or as bits.

    Parameters
    ----------
    *reasons : str or `MaskBit`
        Bit names, case-insensitive (``"neighbour"``, ``"STAR"``, ...).

    Returns
    -------
    bits : `MaskBit`

    Raises
    ------
    ValueError
        For a name that is not a bit, listing the bits.
    """
    bits = MaskBit(0)
    for reason in reasons:
        if isinstance(reason, MaskBit):
            bits |= reason
            continue
        try:
            bits |= MaskBit[str(reason).upper()]
        except KeyError:
            names = ", ".join(bit.name.lower() for bit in MaskBit)
            msg = f"unknown mask reason {reason!r}; the reasons are {names}"
            raise ValueError(msg) from None
    return bits


def as_bitmask(array):
    """Return ``array`` as the package's bit-mask dtype (int32)."""
    return np.asarray(array, dtype=np.int32)
