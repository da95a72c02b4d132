"""What a field's galaxies share, band by band, to spread over Dask workers.

A field whose galaxies take their residual background from the whole frames
(`~picasso_astro.preprocess.field_backgrounds`) first decodes its five
frames, estimates their backgrounds and, without a psField, measures each
band's PSF on its stars: about 7 s of one core for an SDSS field.  On Dask
this is done once per band, each band a task of its own (`prepare_band`),
and every task of the field's galaxies takes the results (`adopt_bands`)
instead of doing it all again.  The results are the same arrays as the
field would compute itself, so the maps do not depend on how the work is
divided.
"""

import contextlib
import copy
from dataclasses import dataclass

from . import _psf
from .exceptions import PicassoInputError
from .preprocess import field_background

__all__ = ["FieldBand", "adopt_bands", "prepare_band"]


@dataclass
class FieldBand:
    """One band of a field, ready for its galaxies.

    Attributes
    ----------
    band : str
    image : `~picasso_astro.images.BandImage`
        The whole frame, as `~picasso_astro.sdss.SDSSField.image` reads it.
    background : tuple
        ``(background, info)``, the band's entry of
        `~picasso_astro.preprocess.field_backgrounds`.
    star_psf : tuple, str or None
        What `~picasso_astro._psf.star_psf_of` holds for the frame after its
        PSF was asked for: None when the PSF does not come from its stars.
    """

    band: str
    image: object
    background: tuple
    star_psf: object = None


def prepare_band(sdss_field, band):
    """Read one band's frame whole, estimate its background and star PSF.

    Parameters
    ----------
    sdss_field : `~picasso_astro.sdss.SDSSField`
    band : str

    Returns
    -------
    prepared : `FieldBand` or None
        None when anything fails: the galaxies' own tasks then run every
        step themselves and report the failure, galaxy by galaxy, as they
        would without this.
    """
    # A copy holds no images (as one sent to a process): this task keeps
    # nothing of the frame once its result is made.
    own = copy.copy(sdss_field)
    try:
        image = own.image(band)
        background = field_background(own, band)
        star_psf = None
        if own.psfield is None:
            # A failure is kept too, as its message.
            with contextlib.suppress(PicassoInputError):
                _psf.psf_for_band(image)
            star_psf = _psf.star_psf_of(image.meta["frame_id"])
    except Exception:  # the galaxies' tasks run the step again and report it
        return None
    return FieldBand(band, image, background, star_psf)


def adopt_bands(sdss_field, prepared):
    """Give a field what `prepare_band` made of its bands elsewhere.

    Parameters
    ----------
    sdss_field : `~picasso_astro.sdss.SDSSField`
    prepared : list of `FieldBand` or None
        None entries (bands whose preparation failed) are left to the field.
    """
    for entry in prepared:
        if entry is None:
            continue
        sdss_field.adopt_image(entry.band, entry.image)
        sdss_field.cache["background", entry.band] = entry.background
        if entry.star_psf is not None:
            _psf.remember_star_psf(entry.image.meta["frame_id"], entry.star_psf)
