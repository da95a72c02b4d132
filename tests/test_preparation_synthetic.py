"""Each preparation step on synthetic scenes: no survey files needed.

The scenes are numpy arrays on astropy TAN grids at the SDSS pixel scale:
Gaussian stars (or Moffat ones) and exponential galaxies placed at sky
positions and drawn through each band's own WCS, so that the truth (positions,
fluxes, PSF widths, sky levels) is known exactly.  `test_preprocess_frames.py`
holds the real-data versions of some of these checks.
"""

import gc
import weakref

import astropy.units as u
import numpy as np
import pytest
from astropy.coordinates import SkyCoord
from astropy.wcs import WCS
from astropy.wcs.utils import pixel_to_pixel

from picasso_astro import _psf
from picasso_astro._grid import (
    align_bands,
    cutout_bands,
    on_image,
    resolve_cutout_size,
)
from picasso_astro._psf import (
    MAX_RINGING,
    estimate_psf,
    fit_fwhm,
    gaussian_psf,
    match_psfs,
    psf_for_band,
    psf_fwhm,
)
from picasso_astro._sources import mask_sources, subtract_background
from picasso_astro.exceptions import AssumedPSFWarning, PicassoInputError
from picasso_astro.images import BANDS, PIXEL_SCALE, BandImage
from picasso_astro.preprocess import PreparationOptions, prepare_target

SIGMA_TO_FWHM = 2.0 * np.sqrt(2.0 * np.log(2.0))
CRVAL = (150.0, 2.0)
FAST = {"background": False, "match_psf": False, "mask_sources": False}


# --------------------------------------------------------------------------
# Scene building
# --------------------------------------------------------------------------


def tan_wcs(shape, *, offset=(0.0, 0.0), rotation=0.0, crval=CRVAL):
    """A TAN WCS at 0.396"/pixel, north up and east left (rotated by ``rotation``).

    ``crval`` lies at the 0-based pixel ``((nx - 1) / 2 + dx, (ny - 1) / 2 + dy)``
    for ``offset = (dx, dy)``.
    """
    ny, nx = shape
    wcs = WCS(naxis=2)
    wcs.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    wcs.wcs.crval = list(crval)
    wcs.wcs.crpix = [(nx + 1) / 2 + offset[0], (ny + 1) / 2 + offset[1]]
    scale = PIXEL_SCALE / 3600.0
    c, s = np.cos(np.deg2rad(rotation)), np.sin(np.deg2rad(rotation))
    wcs.wcs.cd = scale * np.array([[-c, s], [s, c]])
    return wcs


def grid(shape):
    ny, nx = shape
    return np.mgrid[0:ny, 0:nx].astype(float)


def gaussian(shape, x0, y0, flux, fwhm_pix):
    """A circular Gaussian of total ``flux`` centred on pixel ``(x0, y0)``."""
    yy, xx = grid(shape)
    sigma = fwhm_pix / SIGMA_TO_FWHM
    r2 = (xx - x0) ** 2 + (yy - y0) ** 2
    return flux / (2 * np.pi * sigma**2) * np.exp(-0.5 * r2 / sigma**2)


def moffat_psf(fwhm_pix, size=41, beta=3.0):
    """A centred, unit-sum Moffat PSF image of odd ``size``."""
    half = size // 2
    y, x = np.mgrid[-half : half + 1, -half : half + 1]
    alpha = fwhm_pix / (2 * np.sqrt(2 ** (1 / beta) - 1))
    psf = (1 + (x**2 + y**2) / alpha**2) ** (-beta)
    return psf / psf.sum()


def exponential(shape, x0, y0, amplitude, scale, *, q=1.0, angle=0.0):
    """An exponential disc (central surface brightness ``amplitude``)."""
    yy, xx = grid(shape)
    dx, dy = xx - x0, yy - y0
    c, s = np.cos(angle), np.sin(angle)
    major = c * dx + s * dy
    minor = (-s * dx + c * dy) / q
    return amplitude * np.exp(-np.hypot(major, minor) / scale)


def centroid(data, x0, y0, half):
    """First moment of ``data`` in a box of ``2 half + 1`` pixels around a pixel."""
    ix, iy = int(np.rint(x0)), int(np.rint(y0))
    box = (slice(iy - half, iy + half + 1), slice(ix - half, ix + half + 1))
    stamp = data[box]
    yy, xx = np.mgrid[box]
    total = stamp.sum()
    return (stamp * xx).sum() / total, (stamp * yy).sum() / total, total


def box_flux(data, x0, y0, half):
    ix, iy = int(np.rint(x0)), int(np.rint(y0))
    return float(data[iy - half : iy + half + 1, ix - half : ix + half + 1].sum())


def off_grid(wcs_from, wcs_to, shape_from, shape_to):
    """Signed distance (pixels) of each ``shape_from`` pixel beyond ``shape_to``.

    Positive: the pixel's centre maps more than half a pixel off the other
    grid (so it has no data there); negative: inside.
    """
    yy, xx = grid(shape_from)
    x, y = pixel_to_pixel(wcs_from, wcs_to, xx, yy)
    ny, nx = shape_to
    return np.maximum.reduce([-0.5 - x, x - (nx - 0.5), -0.5 - y, y - (ny - 0.5)])


# --------------------------------------------------------------------------
# 1. Alignment of bands and cutouts
# --------------------------------------------------------------------------

GALAXY_PIX = (60.3, 66.7)  # on the r grid
STAR_PIX = (30.2, 40.6)


def _aligned_scene(shape, wcs_r, wcs_band):
    """The r image and a g image of one galaxy and one star on another grid."""
    galaxy = wcs_r.pixel_to_world(*GALAXY_PIX)
    star = wcs_r.pixel_to_world(*STAR_PIX)

    def draw(wcs):
        gx, gy = wcs.world_to_pixel(galaxy)
        sx, sy = wcs.world_to_pixel(star)
        return gaussian(shape, gx, gy, 100.0, 7.0) + gaussian(shape, sx, sy, 30.0, 3.0)

    noise = np.full(shape, 0.01)
    r = BandImage("r", draw(wcs_r), wcs=wcs_r, noise=noise)
    g = BandImage("g", draw(wcs_band), wcs=wcs_band, noise=noise)
    return r, g


@pytest.mark.parametrize(
    ("offset", "rotation"),
    [((3.3, -2.6), 0.0), ((1.2, 0.7), 2.0), ((-4.45, 3.9), -1.0)],
    ids=["shifted", "rotated", "shifted-rotated"],
)
def test_align_bands_puts_sources_on_the_reference_pixels(offset, rotation):
    shape = (128, 128)
    wcs_r = tan_wcs(shape)
    wcs_g = tan_wcs(shape, offset=offset, rotation=rotation)
    r, g = _aligned_scene(shape, wcs_r, wcs_g)
    aligned = align_bands({"r": r, "g": g})
    assert aligned["r"] is r  # the reference is untouched
    out = aligned["g"]
    assert out.wcs is wcs_r
    assert out.shape == shape
    assert out.meta["reprojected_to"] == "r"
    for (x0, y0), half, flux in ((GALAXY_PIX, 14, 100.0), (STAR_PIX, 6, 30.0)):
        xr, yr, fr = centroid(r.data, x0, y0, half)
        xg, yg, fg = centroid(out.data, x0, y0, half)
        assert np.hypot(xg - xr, yg - yr) < 0.1, (xg - xr, yg - yr)
        assert np.hypot(xg - x0, yg - y0) < 0.1
        assert fg == pytest.approx(fr, rel=0.01)
        assert fg == pytest.approx(flux, rel=0.01)
    # Pixels whose centre falls off the g grid are masked and NaN; the others
    # have data (pixels within 0.01 pixel of the boundary may go either way).
    beyond = off_grid(wcs_r, wcs_g, shape, shape)
    off, on = beyond > 0.01, beyond < -0.01
    assert off.sum() > 100  # the test has pixels off the footprint
    assert out.mask[off].all()
    assert np.isnan(out.data[off]).all()
    assert not out.mask[on].any()
    assert np.isfinite(out.data[on]).all()
    # The noise map travels with the data.
    np.testing.assert_allclose(out.noise[on], 0.01, rtol=1e-5)


def test_align_bands_masks_pixels_touching_a_bad_pixel():
    shape = (96, 96)
    wcs_r = tan_wcs(shape)
    wcs_g = tan_wcs(shape, offset=(3.3, -2.6))  # g pixel = r pixel + (3.3, -2.6)
    r, g = _aligned_scene(shape, wcs_r, wcs_g)
    bad = np.zeros(shape, dtype=bool)
    bad[50, 40] = True  # g pixel (x=40, y=50)
    g.mask = bad
    g.data[50, 40] = 1e6  # must not leak into its neighbours
    out = align_bands({"r": r, "g": g})["g"]
    inner = np.zeros(shape, dtype=bool)
    inner[10:-10, 10:-10] = True
    # Bilinear interpolation: the r pixels mapping within one pixel of it,
    # x + 3.3 in (39, 41) and y - 2.6 in (49, 51): x = 36, 37 and y = 52, 53.
    expected = np.zeros(shape, dtype=bool)
    expected[52:54, 36:38] = True
    np.testing.assert_array_equal(out.mask & inner, expected)
    assert np.isnan(out.data[expected]).all()
    assert np.nanmax(out.data[inner]) < 10.0


def test_align_bands_same_grid_is_returned_unchanged():
    shape = (64, 64)
    wcs = tan_wcs(shape)
    r, g = _aligned_scene(shape, wcs, tan_wcs(shape))
    aligned = align_bands({"r": r, "g": g})
    assert aligned["g"] is g


def test_align_bands_refuses_a_band_covering_too_little():
    shape = (100, 100)
    wcs_r = tan_wcs(shape)
    # Same size, shifted by 60 % of the width: it covers 40 % of the r image.
    far = BandImage("g", np.zeros(shape), wcs=tan_wcs(shape, offset=(60.0, 0.0)))
    r = BandImage("r", np.zeros(shape), wcs=wcs_r)
    with pytest.raises(PicassoInputError, match=r"g-band image covers only \d+%"):
        align_bands({"r": r, "g": far})
    # Shifted by 30 %: it covers 70 % and is accepted, the rest masked.
    near = BandImage("g", np.ones(shape), wcs=tan_wcs(shape, offset=(30.0, 0.0)))
    out = align_bands({"r": r, "g": near})["g"]
    assert out.mask.mean() == pytest.approx(0.3, abs=0.01)
    # Different grids without a WCS cannot be aligned.
    stamp = BandImage("g", np.zeros((50, 50)))
    with pytest.raises(PicassoInputError, match="no WCS"):
        align_bands({"r": r, "g": stamp})


def test_align_bands_accepts_a_larger_band_covering_the_reference():
    # A u cutout twice the size of r (four times its area) covers all of it.
    wcs_r = tan_wcs((100, 100))
    r = BandImage("r", np.zeros((100, 100)), wcs=wcs_r)
    big = BandImage("u", np.ones((200, 200)), wcs=tan_wcs((200, 200)))
    out = align_bands({"r": r, "u": big})["u"]
    assert not out.mask.any()
    np.testing.assert_allclose(out.data, 1.0)


def test_align_bands_refuses_a_small_band_inside_the_reference():
    # A 40 x 40 g stamp inside a 100 x 100 r image covers 16 % of it.
    r = BandImage("r", np.zeros((100, 100)), wcs=tan_wcs((100, 100)))
    small = BandImage("g", np.ones((40, 40)), wcs=tan_wcs((40, 40)))
    with pytest.raises(PicassoInputError, match="covers only"):
        align_bands({"r": r, "g": small})


def _frames(shape=(200, 200), bands="ugriz"):
    """Frames of a tilted sky on slightly different grids per band."""
    offsets = {
        "u": ((2.3, -1.7), 0.0),
        "g": ((-1.1, 0.6), 0.5),
        "r": ((0.0, 0.0), 0.0),
        "i": ((0.4, 1.9), 0.0),
        "z": ((-2.2, -0.8), -0.3),
    }
    yy, xx = grid(shape)
    frames = {}
    for band in bands:
        offset, rotation = offsets[band]
        wcs = tan_wcs(shape, offset=offset, rotation=rotation)
        data = 1.0 + 0.01 * xx + 0.001 * yy
        frames[band] = BandImage(band, data, wcs=wcs, noise=np.full(shape, 0.05))
    return frames


@pytest.mark.parametrize(
    "xy", [(10.0, 100.0), (100.0, 193.4), (4.6, 3.2)], ids=["left", "top", "corner"]
)
def test_cutout_near_an_edge_keeps_the_target_centred(xy):
    frames = _frames()
    frame = frames["r"]
    coord = frame.wcs.pixel_to_world(*xy)
    size = 48
    cuts = cutout_bands(frames, coord, size)
    ref = cuts["r"]
    assert ref.shape == (size, size)
    # The target stays at the centre of the cutout...
    x, y = ref.wcs.world_to_pixel(coord)
    assert abs(x - (size - 1) / 2) <= 0.5 + 1e-9
    assert abs(y - (size - 1) / 2) <= 0.5 + 1e-9
    # ...and nothing is shifted: every on-frame pixel holds the frame pixel
    # that the cutout WCS puts there, the off-frame part is NaN and masked.
    yy, xx = grid((size, size))
    fx, fy = pixel_to_pixel(ref.wcs, frame.wcs, xx, yy)
    np.testing.assert_allclose(fx - xx, np.rint(fx - xx), atol=1e-6)
    fx, fy = np.rint(fx).astype(int), np.rint(fy).astype(int)
    inside = (fx >= 0) & (fx < 200) & (fy >= 0) & (fy < 200)
    assert 0.3 < inside.mean() < 0.95
    np.testing.assert_array_equal(ref.data[inside], frame.data[fy[inside], fx[inside]])
    assert ref.mask[~inside].all() and not ref.mask[inside].any()
    assert np.isnan(ref.data[~inside]).all()
    # Every band is on the r grid, masked where its own frame has no data.
    for band in "ugiz":
        cut = cuts[band]
        assert cut.shape == (size, size)
        assert cut.wcs is ref.wcs
        beyond = off_grid(ref.wcs, frames[band].wcs, (size, size), (200, 200))
        assert cut.mask[beyond > 0.01].all()
        # Within the outer half of the frame's border pixels, bilinear
        # interpolation touches the NaN fill beyond the edge: masked too.
        good = beyond < -0.51
        assert not cut.mask[good].any()
        # The sky gradient, drawn in each band's own pixels, is reprojected.
        bx, by = pixel_to_pixel(ref.wcs, frames[band].wcs, xx, yy)
        expected = 1.0 + 0.01 * bx + 0.001 * by
        np.testing.assert_allclose(cut.data[good], expected[good], rtol=1e-4)


def test_cutout_origin_of_a_partial_cutout():
    frames = _frames(bands="r")
    coord = frames["r"].wcs.pixel_to_world(10.0, 100.0)
    ref = cutout_bands(frames, coord, 48)["r"]
    x0, y0 = ref.wcs.world_to_pixel(frames["r"].wcs.pixel_to_world(0, 0))
    # Cutout pixel (0, 0) is frame pixel (-x0, -y0).
    assert ref.meta["cutout_origin"] == (-int(np.rint(x0)), -int(np.rint(y0)))


def test_prepared_cutout_origin_near_an_edge():
    # The 48-pixel cutout lies inside the frame; with the default 64-pixel
    # pad, the padded one does not.
    frames = _frames()
    coord = frames["r"].wcs.pixel_to_world(40.0, 100.0)
    target = prepare_target(frames, coord, size=48, match_psf=False, mask_sources=False)
    x0, y0 = frames["r"].wcs.world_to_pixel(target.wcs.pixel_to_world(0, 0))
    assert target.images["r"].meta["cutout_origin"] == (
        int(np.rint(x0)),
        int(np.rint(y0)),
    )


def test_cutout_origin_inside_the_frame():
    frames = _frames()
    coord = frames["r"].wcs.pixel_to_world(120.2, 80.7)
    ref = cutout_bands(frames, coord, 48)["r"]
    x0, y0 = ref.meta["cutout_origin"]
    np.testing.assert_array_equal(
        ref.data, frames["r"].data[y0 : y0 + 48, x0 : x0 + 48]
    )
    fx, fy = frames["r"].wcs.world_to_pixel(ref.wcs.pixel_to_world(0, 0))
    assert (fx, fy) == pytest.approx((x0, y0), abs=1e-6)


def test_on_image():
    frame = _frames(bands="r")["r"]
    for xy, expected in [
        ((199.4, 0.0), True),
        ((-0.4, 199.4), True),
        ((100.0, -0.6), False),
        ((200.0, 100.0), False),
        ((-100.0, 100.0), False),
    ]:
        assert bool(on_image(frame, frame.wcs.pixel_to_world(*xy))) is expected, xy


def test_cutout_off_the_frame_is_refused():
    frames = _frames()
    coord = frames["r"].wcs.pixel_to_world(-100.0, 100.0)
    with pytest.raises(PicassoInputError, match="not on the r-band image"):
        cutout_bands(frames, coord, 48)


@pytest.mark.parametrize("size", [16, 32])
@pytest.mark.filterwarnings("ignore::picasso_astro.exceptions.AssumedPSFWarning")
def test_small_cutouts_of_frames(size):
    # The other bands are cut size + 16 pixels wide: they cover the reference
    # cutout, however small, and are accepted.
    frames = _frames()
    coord = frames["r"].wcs.pixel_to_world(100.0, 100.0)
    cuts = cutout_bands(frames, coord, size)
    for cut in cuts.values():
        assert cut.shape == (size, size)
        assert not cut.mask.any()
    target = prepare_target(frames, coord, size=size, **FAST)
    assert target.steps["size"] == [size, size]


# --------------------------------------------------------------------------
# 2. Cutout sizes
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("size", "radius", "npix"),
    [
        (256, None, 256),
        (np.int64(100), None, 100),
        (39.6 * u.arcsec, None, 100),
        (1 * u.arcmin, None, 152),  # 151.5 pixels, rounded
        ({"kind": "fixed", "size": 128}, None, 128),
        ({"kind": "fixed", "size": 128}, 5.0, 128),
        # ceil(10 * 4 / 0.396) = ceil(101.01) = 102 pixels
        ({"kind": "half_light", "factor": 10, "min_size": 64}, 4.0, 102),
        ({"kind": "half_light", "factor": 10, "min_size": 64}, 4000 * u.mas, 102),
        # 10 radii of 2 arcsec are 51 pixels: min_size wins
        ({"kind": "half_light", "factor": 10, "min_size": 64}, 2.0, 64),
        # default min_size: 16
        ({"kind": "half_light", "factor": 2}, 1.0, 16),
    ],
)
def test_resolve_cutout_size(size, radius, npix):
    result = resolve_cutout_size(size, half_light_radius=radius)
    assert result == npix
    assert type(result) is int


@pytest.mark.parametrize("radius", [None, 0.0, -1.0, np.nan])
def test_half_light_size_needs_a_radius(radius):
    with pytest.raises(PicassoInputError, match="half-light radius"):
        resolve_cutout_size(
            {"kind": "half_light", "factor": 10, "min_size": 64},
            half_light_radius=radius,
        )


@pytest.mark.parametrize(
    ("size", "match"),
    [
        (7, "at least 8 pixels"),
        (2 * u.arcsec, "at least 8 pixels"),
        ({"kind": "fixed", "size": 4}, "at least 8 pixels"),
        ({"kind": "pixels", "size": 64}, "unknown cutout-size convention"),
        ({"size": 64}, "unknown cutout-size convention"),
    ],
)
def test_bad_cutout_sizes(size, match):
    with pytest.raises(PicassoInputError, match=match):
        resolve_cutout_size(size)


def test_half_light_size_scales_with_the_pixel_scale():
    size = {"kind": "half_light", "factor": 10, "min_size": 16}
    assert resolve_cutout_size(size, half_light_radius=4.0, pixel_scale=0.2) == 200
    assert resolve_cutout_size(8 * u.arcsec, pixel_scale=0.2) == 40


# --------------------------------------------------------------------------
# 3. Residual background
# --------------------------------------------------------------------------


def test_subtract_background_removes_a_tilted_sky():
    sigma = 0.05
    n = 256
    c = (n - 1) / 2
    yy, xx = grid((n, n))
    radius = np.hypot(xx - c, yy - c)
    galaxy = exponential((n, n), c, c, 3.0, 4.0)
    # Half a sigma, tilted by +-0.5 sigma in x and +-0.25 sigma in y.
    sky = sigma * (0.5 + 0.5 * (xx - c) / c + 0.25 * (yy - c) / c)
    rng = np.random.default_rng(2)
    data = sky + galaxy + rng.normal(0, sigma, (n, n))
    image = BandImage("r", data, noise=np.full((n, n), sigma), meta={"run": 1})
    before = image.data.copy()
    out, info = subtract_background(image)
    # A new image; the input is untouched.
    assert out is not image
    np.testing.assert_array_equal(image.data, before)
    assert image.meta == {"run": 1}
    assert out.meta == {"run": 1, "background": info}
    assert out.noise is image.noise
    assert info["box_size"] == 64
    assert info["median"] == pytest.approx(0.5 * sigma, abs=0.1 * sigma)
    residual = out.data - galaxy
    # Far from the galaxy and a box away from the edges, the sky is gone to a
    # tenth of the noise in every quadrant (it ranged from -0.25 to 1.25 sigma).
    far = radius > 40
    inner = (np.abs(xx - c) < c - 48) & (np.abs(yy - c) < c - 48)
    for sx in (-1, 1):
        for sy in (-1, 1):
            quadrant = far & inner & (np.sign(xx - c) == sx) & (np.sign(yy - c) == sy)
            assert abs(np.median(residual[quadrant])) < 0.1 * sigma
    assert abs(np.median(residual[far])) < 0.05 * sigma
    # The galaxy keeps its flux.
    aperture = radius < 25
    assert out.data[aperture].sum() == pytest.approx(galaxy[aperture].sum(), rel=0.03)


def test_subtract_background_removes_a_sky_of_a_few_sigma():
    sigma = 0.05
    n = 256
    c = (n - 1) / 2
    yy, xx = grid((n, n))
    radius = np.hypot(xx - c, yy - c)
    galaxy = exponential((n, n), c, c, 3.0, 4.0)
    sky = sigma * (3.0 + 1.0 * (xx - c) / c)  # from 2 to 4 sigma
    rng = np.random.default_rng(2)
    data = sky + galaxy + rng.normal(0, sigma, (n, n))
    image = BandImage("r", data, noise=np.full((n, n), sigma))
    out, _ = subtract_background(image)
    residual = out.data - galaxy
    far = radius > 40
    inner = (np.abs(xx - c) < c - 48) & (np.abs(yy - c) < c - 48)
    for side in (xx < c, xx > c):
        assert abs(np.median(residual[far & inner & side])) < 0.1 * sigma
    aperture = radius < 25
    assert out.data[aperture].sum() == pytest.approx(galaxy[aperture].sum(), rel=0.03)


def test_subtract_background_keeps_masked_pixels_masked():
    sigma = 0.05
    n = 128
    rng = np.random.default_rng(4)
    data = 0.02 + rng.normal(0, sigma, (n, n))
    mask = np.zeros((n, n), dtype=bool)
    mask[:, :20] = True
    data[:, :20] = 1e4  # a saturated, masked region must not bias the sky
    image = BandImage("r", data, mask=mask)  # no noise map: measured
    out, info = subtract_background(image)
    assert np.isnan(out.data[mask]).all()
    assert out.mask is image.mask
    assert info["median"] == pytest.approx(0.02, abs=0.2 * sigma)
    assert abs(np.median(out.data[~mask])) < 0.1 * sigma


# --------------------------------------------------------------------------
# 4. Masking of stars and neighbours
# --------------------------------------------------------------------------


def _masking_scene(seed=0, n=160):
    c = (n - 1) / 2
    shape = (n, n)
    fwhm = 1.4 / PIXEL_SCALE
    target = exponential(shape, c, c, 3.0, 5.0, q=0.7, angle=0.5)
    neighbour = exponential(shape, 128.3, 36.6, 1.5, 3.0)
    star = gaussian(shape, 30.2, 121.7, 40.0, fwhm)
    # A star on the target's outskirts, 16 pixels from its centre.
    projected = gaussian(shape, c + 13.4, c - 9.1, 15.0, fwhm)
    rng = np.random.default_rng(seed)
    images = {}
    for band, sigma in zip("gri", (0.05, 0.04, 0.06), strict=True):
        data = target + neighbour + star + projected + rng.normal(0, sigma, shape)
        images[band] = BandImage(band, data, noise=np.full(shape, sigma))
    positions = {
        "neighbour": (128.3, 36.6),
        "star": (30.2, 121.7),
        "projected": (c + 13.4, c - 9.1),
    }
    return images, positions, c


@pytest.mark.parametrize("seed", [0, 1])
def test_mask_sources_masks_stars_and_neighbours_not_the_target(seed):
    images, positions, c = _masking_scene(seed)
    source_mask, target, info = mask_sources(images, centre=(c, c), psf_fwhm=1.4)
    assert info["target_found"]
    assert info["deblended"]
    assert info["n_masked_sources"] == 3
    assert info["n_masked_stars_on_target"] == 1
    for name, (x, y) in positions.items():
        ix, iy = int(np.rint(x)), int(np.rint(y))
        assert source_mask[iy, ix], name
        # Grown by about a PSF FWHM around the source's own pixels.
        assert source_mask[iy - 3 : iy + 4, ix - 3 : ix + 4].all(), name
        assert not target[iy, ix], name
    yy, xx = grid(source_mask.shape)
    core = np.hypot(xx - c, yy - c) < 6
    assert not source_mask[core].any()
    assert target[core].all()
    # The target is the disc: its pixels reach out to ~15 pixels along the
    # major axis and it is not the whole image.
    assert 400 < target.sum() < 2000
    assert not (target & source_mask).any()
    assert info["masked_fraction"] == pytest.approx(source_mask.mean())
    assert 0.01 < info["masked_fraction"] < 0.1


def test_mask_sources_on_an_empty_image():
    rng = np.random.default_rng(5)
    shape = (64, 64)
    images = {"r": BandImage("r", rng.normal(0, 0.05, shape))}
    source_mask, target, info = mask_sources(images)
    assert not source_mask.any() and not target.any()
    assert info["masked_fraction"] == 0.0
    assert info["n_masked_sources"] == 0


def test_mask_sources_keeps_a_clumpy_target_whole():
    # Two clumps of the target itself (extended, near the centre) are not
    # taken for stars.
    n = 128
    c = (n - 1) / 2
    shape = (n, n)
    rng = np.random.default_rng(6)
    data = (
        exponential(shape, c, c, 3.0, 6.0)
        + exponential(shape, c + 7, c + 3, 1.0, 2.0)
        + exponential(shape, c - 6, c - 5, 1.0, 2.0)
        + rng.normal(0, 0.05, shape)
    )
    images = {"r": BandImage("r", data, noise=np.full(shape, 0.05))}
    source_mask, target, info = mask_sources(images, psf_fwhm=1.4)
    assert info["target_found"]
    assert info["n_masked_stars_on_target"] == 0
    assert info["n_masked_sources"] == 0
    # The clumps belong to the target.
    assert target[int(c + 3), int(c + 7)] and target[int(c - 5), int(c - 6)]
    yy, xx = grid(shape)
    assert not source_mask[np.hypot(xx - c, yy - c) < 20].any()


#: Colours (flux in g, r, i) of a red galaxy, a blue clump and a red star.
RED_DISC = (0.5, 0.8, 1.0)
BLUE = (1.0, 0.9, 0.7)
RED = (0.3, 0.7, 1.0)


def _star_on_a_disc(star_flux, *, colour=(1.0, 1.0, 1.0), saturate_above=None):
    """A large red disc in g, r, i with one point source 20 pixels from its centre.

    With ``saturate_above``, the source's pixels brighter than that are
    masked, with a bleed trail along their column, as in SDSS fpM masks.
    """
    n = 160
    c = (n - 1) / 2
    shape = (n, n)
    fwhm = 1.4 / PIXEL_SCALE
    star_xy = (c + 16.0, c - 12.0)
    star = gaussian(shape, *star_xy, star_flux, fwhm)
    disc = exponential(shape, c, c, 3.0, 12.0, q=0.8, angle=0.3)
    mask = np.zeros(shape, bool)
    if saturate_above is not None:
        mask = star > saturate_above
        columns = np.unique(np.nonzero(mask)[1])
        row = int(np.rint(star_xy[1]))
        mask[row - 15 : row + 16, columns] = True
    rng = np.random.default_rng(7)
    images = {
        band: BandImage(
            band,
            disc * host + star * own + rng.normal(0, 0.05, shape),
            noise=np.full(shape, 0.05),
            mask=mask,
        )
        for band, host, own in zip("gri", RED_DISC, colour, strict=True)
    }
    return images, star_xy, c


@pytest.mark.parametrize(
    ("star_flux", "saturate_above"), [(90.0, None), (5000.0, 40.0)]
)
def test_a_star_on_a_galaxy_brighter_than_its_centre_is_masked(
    star_flux, saturate_above
):
    # The disc's light under the star dilutes the star's concentration (and
    # a saturated core cuts it into pieces), yet it is no part of the galaxy.
    images, (sx, sy), c = _star_on_a_disc(
        star_flux, colour=BLUE, saturate_above=saturate_above
    )
    source_mask, target, info = mask_sources(images, psf_fwhm=1.4)
    assert info["n_masked_stars_on_target"] >= 1
    yy, xx = grid(source_mask.shape)
    from_star = np.hypot(xx - sx, yy - sy)
    assert source_mask[from_star < 4].all()
    assert not target[from_star < 4].any()
    # Only the star and its halo: the disc around it stays the target's.
    masked_near_target = source_mask & (np.hypot(xx - c, yy - c) < 40)
    assert masked_near_target.sum() < np.pi * 20**2
    assert np.all(masked_near_target <= (from_star < 20))
    from_centre = np.hypot(xx - c, yy - c)
    disc = (from_centre > 10) & (from_centre < 30) & (from_star > 20)
    assert target[disc].all() and not source_mask[disc].any()
    assert not source_mask[from_centre < 6].any()


@pytest.mark.parametrize(("colour", "masked"), [(BLUE, False), (RED, True)])
def test_a_compact_source_fainter_than_the_centre_is_a_star_if_not_bluer(
    colour, masked
):
    # Point-like once the disc beneath is taken off but fainter than the
    # galaxy's centre: bluer than the disc, a star-forming clump; as red as
    # the disc or redder, a star.
    images, (sx, sy), _ = _star_on_a_disc(30.0, colour=colour)
    source_mask, target, info = mask_sources(images, psf_fwhm=1.4)
    at = (int(np.rint(sy)), int(np.rint(sx)))
    assert info["n_masked_stars_on_target"] == int(masked)
    assert source_mask[at] == masked
    assert target[at] != masked


# --------------------------------------------------------------------------
# 5. PSF from stars
# --------------------------------------------------------------------------


def star_frame(
    fwhm_arcsec,
    *,
    n=320,
    per_side=6,
    seed=0,
    band="r",
    moffat=False,
    galaxies=True,
    meta=None,
):
    """A frame of ``per_side**2`` isolated stars and a few compact galaxies."""
    rng = np.random.default_rng(seed)
    shape = (n, n)
    fwhm_pix = fwhm_arcsec / PIXEL_SCALE
    data = np.zeros(shape)
    positions = np.linspace(36, n - 37, per_side)
    step = positions[1] - positions[0]
    for y0 in positions:
        for x0 in positions:
            x, y = x0 + rng.uniform(-0.5, 0.5), y0 + rng.uniform(-0.5, 0.5)
            flux = rng.uniform(20, 200)
            if moffat:
                from scipy.ndimage import shift

                psf = moffat_psf(fwhm_pix, size=41)
                ix, iy = int(x), int(y)
                stamp = shift(psf, (y - iy, x - ix), order=3) * flux
                data[iy - 20 : iy + 21, ix - 20 : ix + 21] += stamp
            else:
                data += gaussian(shape, x, y, flux, fwhm_pix)
    # Galaxies between the stars: extended, so off the stellar locus.
    for y0 in positions[:-1:2] if galaxies else ():
        data += exponential(shape, positions[1] + step / 2, y0 + step / 2, 2.0, 3.0)
    data += rng.normal(0, 0.05, shape)
    return BandImage(band, data, noise=np.full(shape, 0.05), meta=meta or {})


@pytest.mark.parametrize("fwhm", [1.0, 1.4, 1.8])
def test_estimate_psf_recovers_the_stars_width(fwhm):
    psf, measured, nstars = estimate_psf(star_frame(fwhm))
    assert measured == pytest.approx(fwhm, rel=0.05)
    assert 25 <= nstars <= 36
    assert psf.shape == (41, 41)
    assert psf.sum() == pytest.approx(1.0, abs=1e-5)
    assert (psf >= 0).all()
    yy, xx = grid(psf.shape)
    assert (psf * xx).sum() == pytest.approx(20.0, abs=0.1)
    assert (psf * yy).sum() == pytest.approx(20.0, abs=0.1)
    assert np.unravel_index(np.argmax(psf), psf.shape) == (20, 20)
    # The stacked image has the stars' width too.
    assert psf_fwhm(psf)[0] * PIXEL_SCALE == pytest.approx(fwhm, rel=0.05)


def test_estimate_psf_of_moffat_stars():
    psf, measured, nstars = estimate_psf(star_frame(1.3, moffat=True, seed=1))
    assert nstars >= 25
    assert measured == pytest.approx(1.3, rel=0.05)
    assert psf_fwhm(psf)[0] * PIXEL_SCALE == pytest.approx(1.3, rel=0.05)
    yy, xx = grid(psf.shape)
    assert (psf * xx).sum() == pytest.approx(20.0, abs=0.1)
    assert (psf * yy).sum() == pytest.approx(20.0, abs=0.1)


def test_estimate_psf_needs_three_stars():
    # Two stars: the lower half of a frame of four.
    four = star_frame(1.3, n=200, per_side=2, seed=3, galaxies=False)
    assert estimate_psf(four)[2] == 4
    frame = BandImage("r", four.data[:100], noise=four.noise[:100])
    with pytest.raises(PicassoInputError, match="only 2 isolated unsaturated stars"):
        estimate_psf(frame)
    rng = np.random.default_rng(7)
    empty = BandImage("g", rng.normal(0, 0.05, (128, 128)))
    with pytest.raises(PicassoInputError, match="no sources found"):
        estimate_psf(empty)


def test_estimate_psf_skips_saturated_stars():
    frame = star_frame(1.3, seed=4)
    _, _, nstars = estimate_psf(frame)
    peak = frame.data.max()
    _, _, fewer = estimate_psf(frame, saturation=0.5 * peak)
    assert fewer < nstars


def test_psf_for_band_falls_back_to_the_fwhm():
    rng = np.random.default_rng(8)
    empty = BandImage("i", rng.normal(0, 0.05, (128, 128)))
    psf, fwhm, source = psf_for_band(empty, fallback_fwhm=1.5)
    assert (fwhm, source) == (1.5, "fwhm")
    np.testing.assert_allclose(psf, gaussian_psf(1.5 / PIXEL_SCALE, 41))
    assert psf_fwhm(psf)[0] * PIXEL_SCALE == pytest.approx(1.5, rel=0.01)
    # One per band, or an angle.
    assert psf_for_band(empty, fallback_fwhm={"i": 1.7, "r": 1.1})[1:] == (1.7, "fwhm")
    assert psf_for_band(empty, fallback_fwhm=1500 * u.mas)[1] == pytest.approx(1.5)
    with pytest.raises(PicassoInputError, match="no sources found"):
        psf_for_band(empty)
    # A FWHM from the image's header wins over the stars.
    header = BandImage("i", empty.data, psf_fwhm=1.2)
    assert psf_for_band(header)[1:] == (1.2, "fwhm (header)")


def test_psf_for_band_from_stars_is_computed_once_per_frame(monkeypatch):
    calls = []

    def counting(image, **kwargs):
        calls.append(image.band)
        return estimate_psf(image, **kwargs)

    monkeypatch.setattr(_psf, "estimate_psf", counting)
    frame = star_frame(1.3, seed=5, band="g", meta={"run": 3})
    meta = dict(frame.meta)
    psf, fwhm, source = psf_for_band(frame, fallback_fwhm=2.5)
    assert source.startswith("stars (")
    assert int(source[7:-1]) >= 25
    assert fwhm == pytest.approx(1.3, rel=0.05)
    again = psf_for_band(frame)
    np.testing.assert_array_equal(again[0], psf)
    assert again[1:] == (fwhm, source)
    assert calls == ["g"]
    # The frame is not changed: no PSF attached, nothing added to its meta.
    assert frame.psf is None and frame.psf_fwhm is None
    assert frame.meta == meta
    # Another frame object with the same pixels is measured on its own.
    copy = BandImage("g", frame.data.copy(), noise=frame.noise)
    assert psf_for_band(copy)[1] == pytest.approx(fwhm, rel=1e-6)
    assert calls == ["g", "g"]
    # A frame without stars is searched once too.
    rng = np.random.default_rng(15)
    empty = BandImage("u", rng.normal(0, 0.05, (96, 96)))
    for _ in range(2):
        assert psf_for_band(empty, fallback_fwhm=1.5)[2] == "fwhm"
        with pytest.raises(PicassoInputError):
            psf_for_band(empty)
    assert calls == ["g", "g", "u"]


def test_psf_for_band_result_is_independent_of_the_cache():
    frame = star_frame(1.3, seed=6)
    psf, _, _ = psf_for_band(frame)
    psf[:] = 0.0
    again, _, _ = psf_for_band(frame)
    assert again.sum() == pytest.approx(1.0, abs=1e-5)


def test_star_psf_cache_forgets_a_frame():
    frame = star_frame(1.3, seed=16)
    data = weakref.ref(frame.data)
    assert psf_for_band(frame)[2].startswith("stars (")
    del frame
    gc.collect()
    assert data() is None


def test_star_psf_cache_forgets_a_frame_without_stars():
    rng = np.random.default_rng(17)
    frame = BandImage("u", rng.normal(0, 0.05, (96, 96)))
    data = weakref.ref(frame.data)
    assert psf_for_band(frame, fallback_fwhm=1.4)[2] == "fwhm"
    del frame
    gc.collect()
    assert data() is None


def test_psf_for_band_prefers_psfield_then_the_image_psf():
    class PSField:
        def psf(self, band, row, col):
            self.asked = (band, row, col)
            return 7.0 * gaussian_psf(3.0, 51)  # not normalised, larger

    shape = (100, 120)
    wcs = tan_wcs(shape)
    attached = gaussian_psf(4.0, 25)
    image = BandImage("z", np.zeros(shape), wcs=wcs, psf=attached)
    psfield = PSField()
    position = wcs.pixel_to_world(30.0, 70.0)
    psf, fwhm, source = psf_for_band(image, position=position, psfield=psfield)
    assert source == "psField"
    assert psfield.asked[0] == "z"
    assert psfield.asked[1:] == pytest.approx((70.0, 30.0))  # row = y, col = x
    assert psf.shape == (41, 41)
    assert psf.sum() == pytest.approx(1.0)
    assert fwhm == pytest.approx(3.0 * PIXEL_SCALE, rel=0.01)
    # Without a position: the image centre.
    psf_for_band(image, psfield=psfield)
    assert psfield.asked[1:] == pytest.approx((49.5, 59.5))
    # Without a psField: the attached PSF, padded to 41 pixels.
    psf, fwhm, source = psf_for_band(image, fallback_fwhm=1.0)
    assert source == "image"
    assert psf.shape == (41, 41)
    np.testing.assert_allclose(psf[8:33, 8:33], attached)
    assert fwhm == pytest.approx(4.0 * PIXEL_SCALE, rel=0.01)
    image.psf_fwhm = 1.23
    image.meta["psf_from"] = "mock"
    assert psf_for_band(image)[1:] == (1.23, "mock")


# --------------------------------------------------------------------------
# 6. PSF matching
# --------------------------------------------------------------------------

FWHMS = {"u": 1.6, "g": 1.4, "r": 1.2, "i": 1.0, "z": 1.1}
MATCH_STARS = ((50.6, 40.3, 100.0), (80.7, 90.2, 60.0))  # x, y, flux


@pytest.mark.parametrize("profile", ["gaussian", "moffat"])
def test_match_psfs_equalises_point_sources(profile):
    from scipy.signal import fftconvolve

    n = 128
    rng = np.random.default_rng(9)
    images, psfs = {}, {}
    bad = np.zeros((n, n), dtype=bool)
    bad[20, 100] = True
    for band, fwhm in FWHMS.items():
        fwhm_pix = fwhm / PIXEL_SCALE
        if profile == "gaussian":
            psf = gaussian_psf(fwhm_pix, 41)
            data = sum(gaussian((n, n), x, y, f, fwhm_pix) for x, y, f in MATCH_STARS)
        else:
            psf = moffat_psf(fwhm_pix)
            points = np.zeros((n, n))
            for x, y, f in MATCH_STARS:
                points[int(y), int(x)] = f  # on pixel centres
            data = fftconvolve(points, psf, mode="same")
        data = data + rng.normal(0, 0.005, (n, n))
        mask = bad if band == "g" else None
        images[band] = BandImage(band, data, noise=np.full((n, n), 0.005), mask=mask)
        psfs[band] = psf
    matched, info = match_psfs(images, psfs, FWHMS)
    assert info["target_band"] == "u"
    assert info["target_fwhm"] == 1.6
    stars = [
        (int(x), int(y), f) if profile == "moffat" else (x, y, f)
        for x, y, f in MATCH_STARS
    ]
    for band in BANDS:
        out = matched[band]
        assert out.psf is psfs["u"]
        assert out.psf_fwhm == 1.6
        if band != "u":
            assert out.meta["psf_matched_to"] == "u"
            assert info[band]["ringing"] < MAX_RINGING
        for x, y, flux in stars:
            ix, iy = int(np.rint(x)), int(np.rint(y))
            stamp = out.data[iy - 10 : iy + 11, ix - 10 : ix + 11]
            width, (cy, cx) = fit_fwhm(stamp)
            assert width * PIXEL_SCALE == pytest.approx(1.6, rel=0.03), band
            assert (cx + ix - 10, cy + iy - 10) == pytest.approx((x, y), abs=0.05)
            # Flux is conserved: the same in every band's box as in u's.
            assert box_flux(out.data, x, y, 10) == pytest.approx(
                box_flux(matched["u"].data, x, y, 10), rel=0.01
            )
            if profile == "gaussian":
                assert box_flux(out.data, x, y, 10) == pytest.approx(flux, rel=0.01)
    # A bad g pixel stays alone: its neighbours are the kernel-weighted mean
    # of the good pixels around them (normalised convolution), not masked.
    g = matched["g"]
    assert g.mask.sum() == 1
    assert g.mask[20, 100] and not g.mask[20, 99] and not g.mask[15, 100]
    assert np.isnan(g.data[g.mask]).all()
    assert np.isfinite(g.data[~g.mask]).all()


def test_match_psfs_propagates_the_noise():
    n = 256
    rng = np.random.default_rng(10)
    sigma = 0.01
    images = {
        band: BandImage(
            band, rng.normal(0, sigma, (n, n)), noise=np.full((n, n), sigma)
        )
        for band in FWHMS
    }
    psfs = {band: gaussian_psf(f / PIXEL_SCALE, 41) for band, f in FWHMS.items()}
    matched, _ = match_psfs(images, psfs, FWHMS)
    inner = (slice(40, -40), slice(40, -40))
    for band in FWHMS:
        out = matched[band]
        measured = out.data[inner].std()
        assert np.median(out.noise[inner]) == pytest.approx(measured, rel=0.05), band
    # The narrowest band is smoothed the most.
    assert np.median(matched["i"].noise) < np.median(matched["g"].noise) < sigma


# --------------------------------------------------------------------------
# 7. prepare_target end to end
# --------------------------------------------------------------------------

FRAME_FWHM = {"u": 1.6, "g": 1.4, "r": 1.25, "i": 1.15, "z": 1.2}
FRAME_OFFSETS = {
    "u": ((2.3, -1.7), 0.0),
    "g": ((-1.1, 0.6), 0.5),
    "r": ((0.0, 0.0), 0.0),
    "i": ((0.4, 1.9), 0.0),
    "z": ((-2.2, -0.8), -0.3),
}
GALAXY = SkyCoord(150.0, 2.0, unit="deg")  # at r pixel (159.5, 159.5)
GALAXY_AMPLITUDE = {"u": 1.0, "g": 1.5, "r": 2.5, "i": 3.0, "z": 3.5}
GALAXY_SCALE = 5.0  # pixels


def _galaxy(shape, wcs, band):
    x, y = wcs.world_to_pixel(GALAXY)
    return exponential(shape, x, y, GALAXY_AMPLITUDE[band], GALAXY_SCALE)


@pytest.fixture(scope="module")
def five_frames():
    """Five 320-pixel frames: one galaxy at the centre, 36 stars, noise, a sky."""
    n = 320
    shape = (n, n)
    ref = tan_wcs(shape)
    rng = np.random.default_rng(11)
    positions = np.linspace(36, n - 37, 6)
    stars = [
        (ref.pixel_to_world(x + rng.uniform(-0.5, 0.5), y + rng.uniform(-0.5, 0.5)), f)
        for y in positions
        for x in positions
        for f in [rng.uniform(30, 200)]
    ]
    frames = {}
    for band in BANDS:
        offset, rotation = FRAME_OFFSETS[band]
        wcs = tan_wcs(shape, offset=offset, rotation=rotation)
        data = _galaxy(shape, wcs, band) + 0.01  # a small residual sky
        fwhm_pix = FRAME_FWHM[band] / PIXEL_SCALE
        for coord, flux in stars:
            x, y = wcs.world_to_pixel(coord)
            data += gaussian(shape, x, y, flux, fwhm_pix)
        data += rng.normal(0, 0.03, shape)
        frames[band] = BandImage(
            band, data, wcs=wcs, noise=np.full(shape, 0.03), meta={"frame": band}
        )
    # Stars within the 72-pixel cutout around the galaxy (r pixels).
    inside = [
        ref.world_to_pixel(coord)
        for coord, _ in stars
        if np.all(np.abs(np.array(ref.world_to_pixel(coord)) - 159.5) < 32)
    ]
    return frames, inside


@pytest.fixture(scope="module")
def prepared(five_frames):
    frames, _ = five_frames
    return prepare_target(frames, GALAXY, size=72)


def test_prepare_target_on_frames(five_frames, prepared):
    frames, stars_inside = five_frames
    assert len(stars_inside) == 4  # the test has stars to mask in the cutout
    target = prepared
    assert target.name == "J150.00000+02.00000"
    assert target.coord.separation(GALAXY).arcsec < 1e-6
    assert sorted(target.images) == sorted(BANDS)
    for band in BANDS:
        image = target.images[band]
        assert image.shape == (72, 72)
        assert image.wcs is target.wcs
        assert image.psf_fwhm == pytest.approx(1.6, rel=0.05)
    x, y = target.wcs.world_to_pixel(GALAXY)
    assert abs(x - 35.5) <= 0.5 + 1e-9 and abs(y - 35.5) <= 0.5 + 1e-9
    # Final cutout = padded cutout less 64 pixels each side: its origin in the
    # r frame agrees with the WCS.
    x0, y0 = target.images["r"].meta["cutout_origin"]
    fx, fy = frames["r"].wcs.world_to_pixel(target.wcs.pixel_to_world(0, 0))
    assert (fx, fy) == pytest.approx((x0, y0), abs=1e-6)
    assert target.coverage.shape == (72, 72) and target.coverage.all()

    steps = target.steps
    assert set(steps) >= {
        "options",
        "size",
        "reference_band",
        "alignment",
        "background",
        "psf_source",
        "psf_fwhm_arcsec",
        "psf_matching",
        "source_mask",
        "coverage_fraction",
    }
    assert steps["options"] == PreparationOptions().to_dict()
    assert steps["size"] == [72, 72]
    assert steps["reference_band"] == "r"
    assert steps["alignment"]["r"] is None
    for band in "ugiz":
        assert steps["alignment"][band] == "reprojected onto r"
    assert steps["coverage_fraction"] == 1.0
    for band in BANDS:
        assert steps["background"][band]["box_size"] == 64
        assert steps["background"][band]["median"] == pytest.approx(0.01, abs=0.005)
        assert steps["psf_source"][band].startswith("stars (")
        assert steps["psf_fwhm_arcsec"][band] == pytest.approx(
            FRAME_FWHM[band], rel=0.05
        )
    assert steps["psf_matching"]["target_band"] == "u"
    info = steps["source_mask"]
    assert info["target_found"]
    assert info["n_masked_sources"] >= 4
    assert info["target_area_pix"] > 100

    # The four stars in the cutout are masked, the galaxy's core is not, and
    # every band's star has the u band's width: exactly in r, which is not
    # reprojected; the bilinear reprojection of the other bands, done before
    # the matching with PSFs measured on the frames, widens them by up to ~4 %.
    for xs, ys in stars_inside:
        ix, iy = int(np.rint(xs - x0)), int(np.rint(ys - y0))
        assert target.source_mask[iy, ix] and target.mask[iy, ix]
        assert 7 <= ix <= 64 and 7 <= iy <= 64  # room for a 15-pixel stamp
        for band in BANDS:
            stamp = target.images[band].data[iy - 7 : iy + 8, ix - 7 : ix + 8]
            width = fit_fwhm(stamp)[0] * PIXEL_SCALE
            assert width == pytest.approx(1.6, rel=0.05 if band != "r" else 0.02)
    assert not target.mask[28:44, 28:44].any()
    assert (target.input_mask == (~target.coverage | target.source_mask)).all()
    # The galaxy's flux in each band, sky and PSF matching notwithstanding.
    yy, xx = grid((72, 72))
    aperture = np.hypot(xx - x, yy - y) < 20
    truth = exponential((72, 72), x, y, 1.0, GALAXY_SCALE)[aperture].sum()
    for band in BANDS:
        flux = target.images[band].data[aperture].sum()
        assert flux == pytest.approx(GALAXY_AMPLITUDE[band] * truth, rel=0.03), band
    # The model's input.
    cube, mask = target.cube()
    assert cube.shape == (5, 72, 72)
    assert (cube[:, mask] == 0).all()
    model_input = target.model_input()
    assert model_input.shape == (6, 72, 72)
    assert np.isfinite(model_input).all()


def test_prepare_target_frames_without_processing(five_frames):
    frames, _ = five_frames
    target = prepare_target(frames, GALAXY, size=48, **FAST)
    steps = target.steps
    assert steps["background"] is False
    assert steps["psf_matching"] is False
    assert steps["source_mask"]["masked_in_input"] is False
    assert steps["options"]["background"] is False
    # Stars are still flagged in the maps' bit mask, but not blanked in the input.
    assert not (target.input_mask & target.source_mask).any()
    # No padding, no change to the pixels: the r band is the frame's.
    x0, y0 = target.images["r"].meta["cutout_origin"]
    np.testing.assert_array_equal(
        target.images["r"].data, frames["r"].data[y0 : y0 + 48, x0 : x0 + 48]
    )
    # The PSFs are still measured and recorded, each band keeping its own.
    for band in BANDS:
        assert target.images[band].psf_fwhm == pytest.approx(FRAME_FWHM[band], rel=0.05)
        assert target.images[band].psf.shape == (41, 41)


@pytest.mark.parametrize(
    ("switch", "key"),
    [
        ("background", "background"),
        ("match_psf", "psf_matching"),
        ("mask_sources", "source_mask"),
    ],
)
def test_prepare_target_switches_are_recorded(five_frames, switch, key):
    frames, _ = five_frames
    options = PreparationOptions(**{switch: False})
    target = prepare_target(frames, GALAXY, size=48, options=options)
    if key == "source_mask":
        # Sources are always found (for the maps' bit mask); the switch says
        # whether they are blanked in the network's input.
        assert target.steps[key]["masked_in_input"] is False
    else:
        assert target.steps[key] is False
    assert target.steps["options"][switch] is False
    others = {"background", "psf_matching"} - {key}
    for other in others:
        assert isinstance(target.steps[other], dict), other
    assert target.images["r"].shape == (48, 48)


def test_prepare_target_options_by_dict_and_overrides(five_frames):
    frames, _ = five_frames
    target = prepare_target(
        frames,
        GALAXY,
        size=48,
        options={"background": False, "pad": 16},
        mask_sources=False,
    )
    assert target.steps["options"]["pad"] == 16
    assert target.steps["background"] is False
    assert target.steps["source_mask"]["masked_in_input"] is False
    assert isinstance(target.steps["psf_matching"], dict)
    with pytest.raises(PicassoInputError) as error:
        prepare_target(frames, GALAXY, size=48, backgrund=False)
    message = str(error.value)
    assert "'backgrund'" in message
    for name in PreparationOptions.names():
        assert name in message
    with pytest.raises(PicassoInputError, match="'colour'"):
        prepare_target(frames, GALAXY, options={"colour": True})
    with pytest.raises(PicassoInputError, match="background must be True or False"):
        prepare_target(frames, GALAXY, background="no")


def test_prepare_target_refusals(five_frames):
    frames, _ = five_frames
    with pytest.raises(PicassoInputError, match="missing band"):
        prepare_target({b: frames[b] for b in "ugri"}, GALAXY, size=48)
    with pytest.raises(PicassoInputError, match="outside the r-band frame"):
        prepare_target(frames, SkyCoord(150.5, 2.0, unit="deg"), size=48, **FAST)
    with pytest.raises(PicassoInputError, match="half-light radius"):
        prepare_target(frames, GALAXY, size={"kind": "half_light", "factor": 10})
    npix = prepare_target(
        frames,
        GALAXY,
        size={"kind": "half_light", "factor": 10, "min_size": 32},
        half_light_radius=2.0,
        **FAST,
    ).steps["size"]
    assert npix == [51, 51]


def _five_cutouts(n=96, seed=12, shifts=True):
    shape = (n, n)
    rng = np.random.default_rng(seed)
    images = {}
    for band in BANDS:
        offset, rotation = FRAME_OFFSETS[band] if shifts else ((0.0, 0.0), 0.0)
        wcs = tan_wcs(shape, offset=offset, rotation=rotation)
        data = _galaxy(shape, wcs, band) + rng.normal(0, 0.03, shape)
        images[band] = BandImage(band, data, wcs=wcs, noise=np.full(shape, 0.03))
    return images


def test_prepare_target_on_cutouts():
    images = _five_cutouts()
    target = prepare_target(images, psf_fwhm=FRAME_FWHM)
    # The r grid is the cutout: the galaxy at its centre.
    assert target.wcs.wcs.compare(images["r"].wcs.wcs)
    assert target.coord.separation(GALAXY).arcsec < 1e-6
    assert target.name == "J150.00000+02.00000"
    for band in BANDS:
        assert target.images[band].shape == (96, 96)
    steps = target.steps
    assert steps["size"] == [96, 96]
    assert steps["psf_source"] == dict.fromkeys(BANDS, "fwhm")
    assert steps["psf_fwhm_arcsec"] == FRAME_FWHM
    assert steps["psf_matching"]["target_band"] == "u"
    assert steps["source_mask"]["target_found"]
    assert not target.mask[40:56, 40:56].any()
    # The other bands' grids are shifted by up to 2.3 pixels: the edge pixels
    # they do not cover are off the image and masked; PSF matching does not
    # grow them (normalised convolution).
    assert 0.85 < steps["coverage_fraction"] < 0.97
    assert target.coverage[12:-12, 12:-12].all()
    for edge in (np.s_[:2, :], np.s_[-2:, :], np.s_[:, :2], np.s_[:, -2:]):
        assert not target.coverage[edge].any()
    assert (target.mask[~target.coverage]).all()
    # The galaxy at the centre in every band (reprojected, matched): first
    # moments in a 22-pixel box centred on (47.5, 47.5).
    box = np.s_[37:59, 37:59]
    yy, xx = np.mgrid[box]
    for band in BANDS:
        stamp = target.images[band].data[box]
        assert np.isfinite(stamp).all()
        xc, yc = (stamp * xx).sum() / stamp.sum(), (stamp * yy).sum() / stamp.sum()
        assert np.hypot(xc - 47.5, yc - 47.5) < 0.15, band


def test_prepare_target_on_cutouts_needs_a_psf_to_match():
    images = _five_cutouts(seed=13)
    # Nothing to measure the PSF on and nothing given: the typical seeing,
    # with a warning that names the galaxy and what to give.
    with pytest.warns(AssumedPSFWarning, match="mygal: .*give psf_fwhm"):
        assumed = prepare_target(images, name="mygal")
    assert set(assumed.steps["psf_source"].values()) == {"assumed"}
    # Without matching, no PSF is needed.
    target = prepare_target(images, name="mygal", match_psf=False)
    assert target.name == "mygal"
    assert target.steps["psf_source"] == dict.fromkeys(BANDS)
    assert target.steps["psf_matching"] is False


def test_prepare_target_on_cutouts_without_wcs():
    n = 64
    rng = np.random.default_rng(14)
    shape = (n, n)
    images = {
        band: BandImage(
            band, exponential(shape, 31.5, 31.5, 2.0, 4.0) + rng.normal(0, 0.03, shape)
        )
        for band in BANDS
    }
    target = prepare_target(images, psf_fwhm=1.3)
    assert target.wcs is None and target.coord is None
    assert target.name == "galaxy"
    assert target.images["r"].shape == shape
    assert target.coverage.all()
    images["u"] = BandImage("u", np.zeros((60, 60)))
    with pytest.raises(PicassoInputError, match="cannot be aligned"):
        prepare_target(images, psf_fwhm=1.3)


def test_psf_fwhm_header_keyword_is_read_and_checked(tmp_path):
    from astropy.io import fits
    from astropy.wcs import WCS

    from picasso_astro.inputs import parse_inputs

    data = np.random.default_rng(3).normal(0, 0.05, (48, 48)).astype(np.float32)
    wcs = WCS(naxis=2)
    wcs.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    wcs.wcs.crval = [150.0, 2.0]
    wcs.wcs.crpix = [24.5, 24.5]
    wcs.wcs.cdelt = [-0.396 / 3600, 0.396 / 3600]
    for band in BANDS:
        header = wcs.to_header()
        header.update(FILTER=band, BUNIT="nanomaggy", PSF_FWHM=1.25)
        fits.PrimaryHDU(data, header=header).writeto(tmp_path / f"gal-{band}.fits")
    (galaxy,) = parse_inputs(sorted(str(p) for p in tmp_path.glob("gal-?.fits")))
    images = galaxy.load().images
    assert {image.psf_fwhm for image in images.values()} == {1.25}
    for band in BANDS:
        header = wcs.to_header()
        header.update(
            FILTER=band, BUNIT="nanomaggy", PSF_FWHM=-1.0 if band == "r" else 1.3
        )
        fits.PrimaryHDU(data, header=header).writeto(tmp_path / f"bad-{band}.fits")
    (bad,) = parse_inputs(sorted(str(p) for p in tmp_path.glob("bad-?.fits")))
    with pytest.raises(PicassoInputError, match="PSF_FWHM = -1.0 is not a PSF FWHM"):
        bad.load()
