"""IFU products as truth maps, and predictions compared with them.

Readers turn an integral-field product into `~picasso_astro.maps.PropertyMaps`
in the package's properties and units, on the product's own WCS, with
uncertainties, per-map masks and the calibrations used in ``meta``:
`read_manga_maps` (MaNGA DAP ``MAPS`` files) and `read_pipe3d` (Pipe3D
tables in HDF5, as edge-pydb ships for CALIFA). `read_ifu` picks the reader
from the file. `compare` puts predictions on an IFU product's grid and
resolution and reports per property the bias, scatter and the fraction of
pixels inside the predicted uncertainty.
"""

from ._read import read_ifu
from .compare import Comparison, compare
from .manga import read_manga_maps
from .pipe3d import read_pipe3d

__all__ = ["Comparison", "compare", "read_ifu", "read_manga_maps", "read_pipe3d"]
