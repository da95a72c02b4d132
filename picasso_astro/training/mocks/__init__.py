"""Mock SDSS galaxies with per-pixel truth: the training-set generator.

Each mock is a galaxy (bulge + exponential disc with spiral arms, bars and
star-forming clumps, sometimes a companion) whose global properties are drawn
from published scaling relations (`picasso_astro.training.mocks._relations`
cites each), rendered to surface-density maps integrated over pixels, lit by
BC03 stellar populations through the SDSS filters with dust tied to the gas
column and metallicity, plus nebular emission lines (H-alpha, H-beta, [NII],
[OIII], [OII]) from the SFR and gas metallicity, and observed by a model of
the SDSS camera (seeing,
PSF, measured sky noise, stars with bleed trails and spikes, neighbours,
cosmic rays, bad columns).

Outputs are `~picasso_astro.images.BandImage` objects, like the readers of real
frames, so that one preprocessing path serves mocks and real data.

Truth maps (`Mock.truth`) hold log10 values of the seven properties of
`picasso_astro.properties.PROPERTIES`, in that order and those units, as the
pixel average (not the centre value) of each quantity: surface densities are
projected on the sky (per kpc^2 of sky at the galaxy), metallicities are
mass-weighted (stellar) or gas-mass-weighted (gas) over the pixel, ages are
stellar-mass-weighted. Empty-sky pixels are clipped to the lowest bin edge of
the property; metallicity and age pixels with less stellar (gas) mass than the
lowest ``stellar_mass`` (``gas_mass``) bin edge are filled with the lowest bin
edge of the property; both are False in `Mock.truth_valid`. Truth is intrinsic:
not convolved with the PSF.
"""

from ._build import mock_record, write_mock_dataset
from ._camera import MEASURED_FIELDS, measure_sky_noise
from ._core import (
    GENERATOR_VERSION,
    REDSHIFT_RANGE,
    Mock,
    galaxy_seed,
    make_mock,
    mock_sky_noise,
)
from ._kinds import KINDS, POPULATIONS
from ._observe import OWNER_CODES
from ._sky import SkyFrames, open_sky_frames

__all__ = [
    "GENERATOR_VERSION",
    "KINDS",
    "MEASURED_FIELDS",
    "OWNER_CODES",
    "POPULATIONS",
    "REDSHIFT_RANGE",
    "Mock",
    "SkyFrames",
    "galaxy_seed",
    "iter_mocks",
    "make_mock",
    "measure_sky_noise",
    "mock_record",
    "mock_sky_noise",
    "open_sky_frames",
    "write_mock_dataset",
]


def iter_mocks(n, *, seed, size=256, start=0, population="default", sky=None):
    """Yield mocks ``start, ..., start + n - 1`` of the dataset made with ``seed``.

    Parameters
    ----------
    n : int
        Number of mocks.
    seed : int
        Dataset seed; mock ``i`` uses `galaxy_seed` ``(seed, i)``.
    size : int
        Image side in pixels.
    start : int
        Index of the first mock.
    population : str
        Population mix (`POPULATIONS`).
    sky : `SkyFrames`, optional
        Real frames to render into instead of Gaussian sky.

    Yields
    ------
    mock : `Mock`
    """
    for index in range(start, start + n):
        yield make_mock(
            galaxy_seed(seed, index), size=size, population=population, sky=sky
        )
