"""A cutout's surroundings in its frames: what the network sees around it.

A pixel's map depends on the input within the network's receptive field,
which reaches past a cutout's edge. Run on the cutout alone, the maps near
its edges (and, less, everywhere) depend on where the cutout ends; run on
the cutout with the frame around it, and with its window on a lattice of the
frame's pixels that the network's down-sampling respects, a pixel's map
depends on the frame there, not on how the galaxy was cut.
"""

from dataclasses import dataclass

import numpy as np

from .exceptions import PicassoInputError

__all__ = ["FrameContext"]


@dataclass
class FrameContext:
    """A prepared cutout with the frame pixels around it.

    Attributes
    ----------
    cube : 3D `~numpy.ndarray`
        ``(5, ny, nx)`` nanomaggies, prepared as the cutout is; masked pixels
        are zero.
    mask : 2D bool `~numpy.ndarray`
        The network's input mask there (bad or off the frame, and the stars
        and neighbours when they are masked).
    inner : tuple of slice
        The cutout within ``cube``.
    origin : tuple of int
        ``(x, y)``: the frame pixel of ``cube[:, 0, 0]``.
    pixels : int
        How far the network's window reaches past the cutout, at least.
    """

    cube: np.ndarray
    mask: np.ndarray
    inner: tuple
    origin: tuple
    pixels: int

    def window(self, multiple):
        """Return the part of the cube the network sees, and the cutout in it.

        The window reaches at least `pixels` past the cutout on every side,
        and starts on a multiple of ``multiple`` frame pixels, so that two
        cutouts of one frame put the network's down-sampling on the same
        pixels.

        Parameters
        ----------
        multiple : int
            The network's down-sampling factor (``2**depth``).

        Returns
        -------
        window, crop : tuple of slice
            ``cube[:, window]`` is the network's input; ``crop`` is the
            cutout within it.

        Raises
        ------
        PicassoInputError
            If the prepared frame pixels do not reach far enough.
        """
        context = self.pixels
        window, crop = [], []
        for axis, start in ((0, self.origin[1]), (1, self.origin[0])):
            inner = self.inner[axis]
            first = start + inner.start - context  # in frame pixels
            lattice = (first // multiple) * multiple
            reach = inner.stop - inner.start + 2 * context + multiple - 1
            side = -(-reach // multiple) * multiple
            begin = lattice - start
            if begin < 0 or begin + side > self.cube.shape[1 + axis]:
                msg = (
                    f"a context of {context} pixels around the cutout reaches past "
                    "the prepared frame pixels (pad); raise pad or lower context"
                )
                raise PicassoInputError(msg)
            window.append(slice(begin, begin + side))
            crop.append(slice(inner.start - begin, inner.stop - begin))
        return tuple(window), tuple(crop)
