"""The per-band image: where real SDSS frames and mock galaxies meet.

Every reader (five-band cutouts, SDSS corrected frames, the mock generator)
returns `BandImage` objects; everything downstream (preprocessing, the model)
works on them, so that mocks and real data share one code path.
"""

import dataclasses
from dataclasses import dataclass, field

import numpy as np
from astropy.wcs import WCS

__all__ = [
    "BANDS",
    "PIXEL_SCALE",
    "TYPICAL_FWHM",
    "BandImage",
]

#: SDSS bands in wavelength order: the channel order of every model input.
BANDS = ("u", "g", "r", "i", "z")

#: SDSS imaging pixel scale in arcsec per pixel.
PIXEL_SCALE = 0.396

#: PSF FWHM in arcsec taken where a band's PSF is unknown: the median r-band
#: seeing of SDSS imaging (1.4 arcsec; Abazajian et al. 2009, ApJS 182, 543).
TYPICAL_FWHM = 1.4


@dataclass
class BandImage:
    """One band of one field or cutout, calibrated to nanomaggies.

    Parameters
    ----------
    band : str
        One of `BANDS`.
    data : 2D `~numpy.ndarray`
        Surface brightness per pixel in nanomaggies (1 nmgy is m_AB = 22.5).
    wcs : `~astropy.wcs.WCS` or None
        Celestial WCS of ``data``; None only for mocks and unregistered stamps.
    noise : 2D `~numpy.ndarray` or None
        One-sigma noise per pixel in nanomaggies, if known.
    mask : 2D bool `~numpy.ndarray` or None
        True where a pixel must not be used (bad columns, saturation, no data).
    psf : 2D `~numpy.ndarray` or None
        Image of the point-spread function, centred, summing to one.
    psf_fwhm : float or None
        FWHM of the PSF in arcsec, if known.
    meta : dict
        Provenance: source file, run/camcol/field, header cards worth keeping.
    """

    band: str
    data: np.ndarray
    wcs: WCS | None = None
    noise: np.ndarray | None = None
    mask: np.ndarray | None = None
    psf: np.ndarray | None = None
    psf_fwhm: float | None = None
    meta: dict = field(default_factory=dict)

    def __post_init__(self):
        if self.band not in BANDS:
            msg = f"band must be one of {', '.join(BANDS)}, not {self.band!r}"
            raise ValueError(msg)
        self.data = np.asarray(self.data, dtype=np.float32)
        if self.data.ndim != 2:
            msg = f"a band image must be 2D, got shape {self.data.shape}"
            raise ValueError(msg)
        for name in ("noise", "mask"):
            value = getattr(self, name)
            if value is not None and np.shape(value) != self.data.shape:
                msg = (
                    f"{name} has shape {np.shape(value)} but the image has "
                    f"shape {self.data.shape}"
                )
                raise ValueError(msg)
        if self.mask is not None:
            self.mask = np.asarray(self.mask, dtype=bool)

    def replace(self, **changes):
        """Return a copy with some attributes changed (and checked again).

        Parameters
        ----------
        **changes
            New values by attribute name (``data``, ``mask``, ``meta``, ...).

        Returns
        -------
        image : `BandImage`
        """
        return dataclasses.replace(self, **changes)

    @property
    def shape(self):
        """Tuple of int: the image shape ``(ny, nx)``."""
        return self.data.shape

    def bad_pixels(self):
        """Return the mask of unusable pixels: masked or not finite.

        Returns
        -------
        bad : 2D bool `~numpy.ndarray`
        """
        bad = ~np.isfinite(self.data)
        if self.mask is not None:
            bad |= self.mask
        return bad
