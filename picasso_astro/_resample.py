"""Resampling one pixel grid onto another: the numerics behind `align_bands`.

Private: the public entry point is `picasso_astro.preprocess.align_bands`.

The pixel mapping between two bands of one SDSS field is smooth (nearly a
shift), so it is computed exactly on a coarse grid of nodes and interpolated
with a bicubic spline in between; every array of a band is then resampled
with that one mapping.  The interpolation of the arrays is the one of
`reproject.reproject_interp` with ``order=1``: bilinear, with the outer half
of the border pixels taking the border value and anything farther off the
input grid NaN.
"""

import numpy as np
from astropy.wcs.utils import pixel_to_pixel
from scipy.interpolate import RectBivariateSpline
from scipy.ndimage import map_coordinates

__all__ = ["pixel_map", "resample"]

#: Spacing in pixels of the nodes where the mapping is computed exactly.
NODE_SPACING = 32


def _nodes(n, spacing):
    return np.linspace(0, n - 1, max(int(np.ceil((n - 1) / spacing)), 1) + 1)


def pixel_map(wcs_out, wcs_in, shape_out, *, spacing=NODE_SPACING):
    """Return the input-grid position of every output pixel.

    Parameters
    ----------
    wcs_out, wcs_in : `~astropy.wcs.WCS`
        Celestial WCS of the output and input grids.
    shape_out : tuple of int
        ``(ny, nx)`` of the output grid.
    spacing : float
        Pixels between the nodes where the mapping is computed exactly.

    Returns
    -------
    coords : `~numpy.ndarray`
        Shape ``(2, ny, nx)``: input ``(y, x)`` of each output pixel.
    """
    ny, nx = shape_out
    node_y, node_x = _nodes(ny, spacing), _nodes(nx, spacing)
    grid_x, grid_y = np.meshgrid(node_x, node_y)
    x_in, y_in = pixel_to_pixel(wcs_out, wcs_in, grid_x, grid_y)
    rows, cols = np.arange(ny, dtype=float), np.arange(nx, dtype=float)
    coords = np.empty((2, ny, nx))
    for axis, values in enumerate((y_in, x_in)):
        spline = RectBivariateSpline(
            node_y, node_x, values, kx=min(3, len(node_y) - 1),
            ky=min(3, len(node_x) - 1),
        )  # fmt: skip
        coords[axis] = spline(rows, cols)
    return coords


def resample(arrays, coords):
    """Interpolate arrays bilinearly at ``coords``.

    Parameters
    ----------
    arrays : list of 2D `~numpy.ndarray`
        Same shape: the input grid.
    coords : `~numpy.ndarray`
        Shape ``(2, ny, nx)``, as `pixel_map` returns.

    Returns
    -------
    resampled : list of 2D `~numpy.ndarray`
        Float64; NaN where ``coords`` lie more than half a pixel off the
        input grid.
    """
    outside = np.zeros(coords.shape[1:], dtype=bool)
    clipped = np.empty_like(coords)
    for axis, n in enumerate(arrays[0].shape):
        outside |= (coords[axis] < -0.5) | (coords[axis] > n - 0.5)
        np.clip(coords[axis], 0, n - 1, out=clipped[axis])
    resampled = []
    for array in arrays:
        out = map_coordinates(array, clipped, output=float, order=1, mode="nearest")
        out[outside] = np.nan
        resampled.append(out)
    return resampled
