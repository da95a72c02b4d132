"""From SDSS frames (and mock band images) to model-ready cutouts."""

import numpy as np
import pytest
from astropy.coordinates import SkyCoord
from astropy.table import Table
from astropy.wcs import WCS
from photutils.centroids import centroid_2dg
from sdss_helpers import FIELD_2583, FIELD_4510, FIELD_5405, get_field

from picasso_astro import _grid, _psf, _sources, preprocess
from picasso_astro._plan import plan_units
from picasso_astro._psf import fit_fwhm
from picasso_astro.exceptions import PicassoInputError
from picasso_astro.images import BANDS, BandImage
from picasso_astro.inputs import parse_targets
from picasso_astro.masks import MaskBit

# Three galaxies of field 4510-4-30: r-band isophotal centroids measured on
# the frame (ra, dec in degrees; frame pixels x, y ~ (1506, 535),
# (815, 1031) and (395, 1256)), there being no photoObj file for this field.
GALAXIES_4510 = SkyCoord(
    [200.43681677, 200.48877278, 200.50993224],
    [36.86442291, 36.78051463, 36.73092147],
    unit="deg",
)

FAST = {"background": False, "mask_sources": False, "match_psf": False}


def _centroid(image, radius=6):
    ny, nx = image.shape
    cy, cx = (ny - 1) / 2, (nx - 1) / 2
    y0, x0 = int(cy) - radius, int(cx) - radius
    stamp = image[y0 : y0 + 2 * radius + 1, x0 : x0 + 2 * radius + 1]
    x, y = centroid_2dg(np.nan_to_num(stamp))
    return x + x0, y + y0


@pytest.fixture(scope="module")
def prepared_4510(shared_data):
    field = get_field(FIELD_4510)
    (unit,) = plan_units({field.key: field}, parse_targets(GALAXIES_4510)).units
    assert unit.field.name == "004510-4-0030"
    return [
        preprocess.prepare_target(
            field.images(), target.coord, size=96, psfield=field.psfield_data()
        )
        for target in unit.targets
    ]


def test_three_galaxies_centred_at_catalogue_positions(prepared_4510):
    for target, coord in zip(prepared_4510, GALAXIES_4510, strict=True):
        assert target.coord.separation(coord).arcsec < 1e-6
        assert target.images["r"].shape == (96, 96)
        x, y = target.wcs.world_to_pixel(coord)
        assert abs(x - 47.5) <= 0.5 + 1e-9
        assert abs(y - 47.5) <= 0.5 + 1e-9
        # The galaxy's measured centre, through the cutout WCS, is its
        # catalogue position within one pixel.
        xc, yc = _centroid(target.images["r"].data)
        sep = target.wcs.pixel_to_world(xc, yc).separation(coord).arcsec
        assert sep < 0.396
        # Every step ran and said so.
        steps = target.steps
        assert steps["background"]["r"]["box_size"] == 64
        assert steps["psf_matching"]["target_band"] in BANDS
        assert steps["source_mask"]["target_found"]
        assert not target.mask[40:56, 40:56].any()
        assert target.coverage.all()
        x_in = target.model_input()
        assert x_in.shape == (6, 96, 96)
        assert np.isfinite(x_in).all()


def test_cutout_wcs_is_exact(shared_data):
    field = get_field(FIELD_4510)
    images = field.images()
    coord = GALAXIES_4510[1]
    target = preprocess.prepare_target(images, coord, size=64, **FAST)
    x0, y0 = target.images["r"].meta["cutout_origin"]
    frame = images["r"]
    np.testing.assert_array_equal(
        target.images["r"].data, frame.data[y0 : y0 + 64, x0 : x0 + 64]
    )
    xs = np.array([0.0, 63.0, 17.3, 40.0])
    ys = np.array([0.0, 63.0, 50.1, 5.5])
    world = target.wcs.pixel_to_world(xs, ys)
    fx, fy = frame.wcs.world_to_pixel(world)
    np.testing.assert_allclose(fx, xs + x0, atol=1e-6)
    np.testing.assert_allclose(fy, ys + y0, atol=1e-6)
    assert target.steps["background"] is False
    assert target.steps["psf_matching"] is False
    assert target.steps["source_mask"]["masked_in_input"] is False


def test_bands_aligned_to_a_tenth_of_a_pixel(shared_data):
    # Star centroids in every reprojected band against the r band.
    field = get_field(FIELD_2583)
    images = field.images()
    centre = images["r"].wcs.pixel_to_world(1500, 400)
    target = preprocess.prepare_target(images, centre, size=400, **FAST)
    r = target.images["r"]
    segm, _ = _sources.detect(r.data, r.noise, nsigma=15, npixels=10, fwhm=2.0)
    from photutils.segmentation import SourceCatalog

    cat = SourceCatalog(np.nan_to_num(r.data), segm, progress_bar=False)
    ok = (
        (cat.ellipticity.value < 0.15)
        & (cat.x_centroid > 15)
        & (cat.x_centroid < 385)
        & (cat.y_centroid > 15)
        & (cat.y_centroid < 385)
        & (cat.area.value < 300)
    )
    xs, ys = cat.x_centroid[ok], cat.y_centroid[ok]
    assert len(xs) >= 10
    residuals = {}
    for band in "ugiz":
        offsets = []
        for x, y in zip(xs, ys, strict=True):
            ix, iy = int(np.rint(x)), int(np.rint(y))
            box = (slice(iy - 5, iy + 6), slice(ix - 5, ix + 6))
            yr, xr = fit_fwhm(r.data[box])[1]
            yb, xb = fit_fwhm(target.images[band].data[box])[1]
            offsets.append((xb - xr, yb - yr))
        residuals[band] = np.median(np.array(offsets), axis=0)
        print(band, len(xs), residuals[band])
        assert np.hypot(*residuals[band]) < 0.1, (band, residuals[band])


def test_alignment_matches_reproject_interp(shared_data):
    # align_bands resamples with one pixel mapping per band; reproject_interp
    # (bilinear) computes the mapping exactly for every pixel and array.
    from reproject import reproject_interp

    field = get_field(FIELD_4510)
    images = field.images()
    coord = images["r"].wcs.pixel_to_world(20, 30)  # partly off the frame
    stamps = _grid.cutout_bands(images, coord, 256)
    cuts = {
        band: _grid._cut(images[band], coord, 256 + (band != "r") * 16)[0]
        for band in BANDS
    }
    for band in "ugiz":
        cut, aligned = cuts[band], stamps[band]
        bad = cut.bad_pixels()
        data, footprint = reproject_interp(
            (np.where(bad, 0.0, cut.data), cut.wcs), aligned.wcs, shape_out=(256, 256)
        )
        noise, _ = reproject_interp((cut.noise, cut.wcs), aligned.wcs, (256, 256))
        touched, _ = reproject_interp(
            (bad.astype(np.float32), cut.wcs), aligned.wcs, (256, 256)
        )
        mask = (footprint < 1) | (touched > 0)
        np.testing.assert_array_equal(aligned.mask, mask)
        good = ~mask
        scale = np.abs(data[good]).max()
        np.testing.assert_allclose(aligned.data[good], data[good], atol=1e-6 * scale)
        np.testing.assert_allclose(aligned.noise[good], noise[good], rtol=1e-6)


def test_matching_kernels_are_reused_and_independent():
    from picasso_astro._psf import gaussian_psf

    narrow, broad = gaussian_psf(2.5, 41), gaussian_psf(3.5, 41)
    first, info = _psf.matching_kernel(narrow, broad)
    first[:] = 0.0
    info["window"] = "changed"
    again, info_again = _psf.matching_kernel(narrow.copy(), broad.copy())
    assert again.sum() == pytest.approx(1.0, abs=0.01)
    assert info_again["window"] != "changed"


def test_crowded_field_keeps_target_whole(shared_data):
    field = get_field(FIELD_5405)
    images = field.images()
    coord = images["r"].wcs.pixel_to_world(290.09, 1047.65)
    target = preprocess.prepare_target(images, coord, size=128, psf_fwhm=1.3)
    info = target.steps["source_mask"]
    assert info["target_found"]
    assert info["n_masked_sources"] >= 5  # the stars of the Galactic plane
    assert target.source_mask.mean() > 0.02
    # The target's core is never masked.
    assert not target.source_mask[58:70, 58:70].any()
    assert not target.mask[60:68, 60:68].any()


def test_target_near_an_edge_keeps_its_place(shared_data):
    field = get_field(FIELD_4510)
    images = field.images()
    coord = images["r"].wcs.pixel_to_world(10.0, 700.0)
    target = preprocess.prepare_target(images, coord, size=64, **FAST)
    x, y = target.wcs.world_to_pixel(coord)
    assert abs(x - 31.5) <= 0.5 + 1e-9
    assert abs(y - 31.5) <= 0.5 + 1e-9
    # Pixels off the frame's left edge (about 22 columns) are flagged off the
    # image and masked, the rest is data.
    off = target.flagged(MaskBit.OFF_IMAGE)
    assert off[:, :20].all()
    assert not off[:, 26:].any()
    assert not target.flagged(MaskBit.BAD_PIXEL).any()
    assert target.mask[:, :20].all()
    assert target.steps["coverage_fraction"] == pytest.approx(42 / 64, abs=0.05)


def test_target_outside_every_frame_is_named(shared_data):
    field = get_field(FIELD_4510)
    table = Table(
        {
            "name": ["good", "lost galaxy"],
            "ra": [GALAXIES_4510[0].ra.deg, 10.0],
            "dec": [GALAXIES_4510[0].dec.deg, -40.0],
        }
    )
    plan = plan_units({field.key: field}, parse_targets(table))
    assert [t.name for t in plan.units[0].targets] == ["good"]
    (failed,) = plan.failed
    assert isinstance(failed.error, PicassoInputError)
    assert "lost galaxy" in str(failed.error)


def test_psfield_matching_does_not_ring(shared_data):
    field = get_field(FIELD_2583)
    images = field.images()
    coord = images["r"].wcs.pixel_to_world(1500, 400)
    target = preprocess.prepare_target(
        images, coord, size=64, background=False, mask_sources=False,
        psfield=field.psfield_data(),
    )  # fmt: skip
    info = target.steps["psf_matching"]
    assert set(target.steps["psf_source"].values()) == {"psField"}
    assert info["target_band"] == "u"
    for band in "griz":
        print(band, info[band])
        assert info[band]["ringing"] < _psf.MAX_RINGING
        assert info[band]["residual"] < 0.2
    assert any(info[band]["method"] == "fourier ratio" for band in "griz")


def _mock_images(rng, shape=(300, 300)):
    wcs = WCS(naxis=2)
    wcs.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    wcs.wcs.crval = [150.0, 2.0]
    wcs.wcs.crpix = [150.5, 150.5]
    wcs.wcs.cdelt = [-0.396 / 3600, 0.396 / 3600]
    yy, xx = np.mgrid[0 : shape[0], 0 : shape[1]]
    galaxy = 5.0 * np.exp(-np.hypot(xx - 149.5, yy - 149.5) / 6.0)
    star = 50.0 * np.exp(-0.5 * (np.hypot(xx - 180, yy - 125) / 1.3) ** 2)
    images = {}
    for band in BANDS:
        noise = np.full(shape, 0.02)
        data = galaxy + star + rng.normal(0, 0.02, shape) + 0.01
        images[band] = BandImage(band, data, wcs=wcs, noise=noise)
    return images


def test_mock_images_take_the_same_path():
    rng = np.random.default_rng(1)
    images = _mock_images(rng)
    coord = SkyCoord(150.0, 2.0, unit="deg")
    fwhm = {"u": 1.6, "g": 1.4, "r": 1.2, "i": 1.1, "z": 1.1}
    target = preprocess.prepare_target(images, coord, size=96, psf_fwhm=fwhm)
    assert target.steps["psf_source"] == dict.fromkeys(BANDS, "fwhm")
    assert target.steps["psf_matching"]["target_band"] == "u"
    # The residual background (0.01) is removed.
    assert abs(target.steps["background"]["r"]["median"] - 0.01) < 0.005
    # The star is masked, the galaxy is not.
    x_star, y_star = target.wcs.world_to_pixel(images["r"].wcs.pixel_to_world(180, 125))
    assert target.source_mask[int(np.rint(y_star)), int(np.rint(x_star))]
    assert not target.mask[40:56, 40:56].any()
    with pytest.raises(PicassoInputError, match="outside"):
        preprocess.prepare_target(images, SkyCoord(160, 2, unit="deg"))


def test_cutout_size_conventions():
    import astropy.units as u

    resolve = _grid.resolve_cutout_size
    assert resolve(256) == 256
    assert resolve({"kind": "fixed", "size": 128}) == 128
    assert resolve(39.6 * u.arcsec) == 100
    half_light = {"kind": "half_light", "factor": 10}
    npix = resolve(half_light, half_light_radius=4.0)
    assert npix == int(np.ceil(40 / 0.396))
    assert resolve(half_light | {"min_size": 128}, half_light_radius=4.0) == 128
    with pytest.raises(PicassoInputError, match="half-light radius"):
        resolve(half_light)


def test_a_fields_background_is_the_same_for_every_cutout(shared_data):
    field = get_field(FIELD_4510)
    images = field.images()
    backgrounds = preprocess.field_backgrounds(field)
    assert backgrounds["r"][0].shape == images["r"].shape == (1489, 2048)
    coord = GALAXIES_4510[1]
    x, y = images["r"].wcs.world_to_pixel(coord)
    shifted = images["r"].wcs.pixel_to_world(x + 40, y - 25)
    plain_steps = {"match_psf": False, "mask_sources": False}
    applied = []
    for where, size in ((coord, 128), (shifted, 96)):
        plain = preprocess.prepare_target(
            images, where, size=size, background=False, **plain_steps
        )
        done = preprocess.prepare_target(
            images, where, size=size, backgrounds=backgrounds, **plain_steps
        )
        assert done.steps["background"]["r"]["scope"] == "field"
        corner = done.images["r"].meta["cutout_origin"]
        applied.append((plain.images["r"].data - done.images["r"].data, corner))
    (a, (ax, ay)), (b, (bx, by)) = applied
    x0, y0 = max(ax, bx), max(ay, by)
    x1, y1 = min(ax + a.shape[1], bx + 96), min(ay + a.shape[0], by + 96)
    np.testing.assert_array_equal(
        a[y0 - ay : y1 - ay, x0 - ax : x1 - ax], b[y0 - by : y1 - by, x0 - bx : x1 - bx]
    )
    # With every step on, the field's background changes the bands by a
    # small part of their noise against the cutout's own estimate.
    own = preprocess.prepare_target(images, coord, size=128)
    field_wide = preprocess.prepare_target(
        images, coord, size=128, backgrounds=backgrounds
    )
    own_cube, mask = own.cube()
    cube, _ = field_wide.cube()
    for k, band in enumerate(BANDS):
        noise = np.nanmedian(own.images[band].noise)
        change = (own_cube[k] - cube[k])[~mask]
        assert np.median(np.abs(change)) < 0.2 * noise
