"""The residual background of a field, estimated once on its whole frames.

Synthetic frames made here: a sky with a known gradient, galaxies and noise,
five bands on slightly shifted grids.  The background of every cutout of a
field is then a slice of one estimate, whatever the cutout, and it removes
the sky as the per-cutout estimate does.
"""

import numpy as np
import pytest
from field_helpers import GALAXIES, SHAPE, SIGMA, frame_wcs, galaxies, sky, write_field
from photutils.background import Background2D, MedianBackground
from scipy import ndimage

from picasso_astro import _grid, _sources
from picasso_astro._plan import (
    FIELD_BACKGROUND_MIN,
    FieldUnit,
    plan_units,
    split_units,
)
from picasso_astro.exceptions import PicassoInputError
from picasso_astro.images import BANDS, BandImage
from picasso_astro.inputs import parse_targets
from picasso_astro.preprocess import field_backgrounds, prepare_target
from picasso_astro.sdss import find_frames

PLAIN = {"match_psf": False, "mask_sources": False, "psf_fwhm": 1.4}


def frames(seed=0):
    rng = np.random.default_rng(seed)
    images = {}
    for band in BANDS:
        data = sky() + galaxies(band) + rng.normal(0, SIGMA, SHAPE)
        images[band] = BandImage(
            band,
            data,
            wcs=frame_wcs(band),
            noise=np.full(SHAPE, SIGMA),
            psf_fwhm=1.4,
        )
    return images


@pytest.fixture(scope="module")
def field():
    images = frames()
    backgrounds = {}
    for band, image in images.items():
        background, info = _sources.estimate_background(image)
        backgrounds[band] = (background.astype(np.float32), dict(info, scope="field"))
    return images, backgrounds


def sky_of(images, band, x, y):
    return images["r"].wcs.pixel_to_world(x, y)


def applied_background(images, coord, size, backgrounds):
    """The background a cutout's preparation subtracted, per band, and its corner."""
    plain = prepare_target(images, coord, size=size, background=False, **PLAIN)
    done = prepare_target(images, coord, size=size, backgrounds=backgrounds, **PLAIN)
    corner = done.images["r"].meta["cutout_origin"]
    assert plain.images["r"].meta["cutout_origin"] == corner
    return {b: plain.images[b].data - done.images[b].data for b in BANDS}, corner


def common(first, second):
    """Slices of two cutouts ``(values, (x0, y0))`` on their common frame pixels."""
    (a, (ax, ay)), (b, (bx, by)) = first, second
    x0, y0 = max(ax, bx), max(ay, by)
    x1 = min(ax + a.shape[1], bx + b.shape[1])
    y1 = min(ay + a.shape[0], by + b.shape[0])
    assert x1 - x0 > 20 and y1 - y0 > 20
    return (
        a[y0 - ay : y1 - ay, x0 - ax : x1 - ax],
        b[y0 - by : y1 - by, x0 - bx : x1 - bx],
    )


def test_two_cutouts_of_a_galaxy_get_the_same_background(field):
    images, backgrounds = field
    x, y, _, _ = GALAXIES[0]
    centred = sky_of(images, "r", x, y)
    shifted = sky_of(images, "r", x + 37, y - 23)
    first = applied_background(images, centred, 128, backgrounds)
    second = applied_background(images, shifted, 96, backgrounds)
    for band in BANDS:
        a, b = common((first[0][band], first[1]), (second[0][band], second[1]))
        if band == "r":
            # The reference band is cut, not resampled: the very same values.
            np.testing.assert_array_equal(a, b)
        else:
            # Resampled onto each cutout's grid with its own pixel mapping:
            # the same to float32 rounding on the galaxy (about 1e-7 nmgy).
            np.testing.assert_allclose(a, b, rtol=0, atol=1e-5 * SIGMA)
        # And they are the field's background there.
        assert np.all(np.abs(a - np.median(a)) < SIGMA)
    # Estimated on each cutout instead, the two differ on the same pixels.
    own = [
        prepare_target(images, coord, size=size, **PLAIN)
        for coord, size in ((centred, 128), (shifted, 96))
    ]
    plain = [
        prepare_target(images, coord, size=size, background=False, **PLAIN)
        for coord, size in ((centred, 128), (shifted, 96))
    ]
    a, b = common(
        (plain[0].images["r"].data - own[0].images["r"].data, first[1]),
        (plain[1].images["r"].data - own[1].images["r"].data, second[1]),
    )
    assert np.abs(a - b).max() > 1e-3 * SIGMA


def test_the_field_background_removes_a_known_sky_gradient(field):
    images, backgrounds = field
    for x, y, _, scale in GALAXIES[:2]:
        coord = sky_of(images, "r", x, y)
        done = prepare_target(images, coord, size=160, backgrounds=backgrounds, **PLAIN)
        own = prepare_target(images, coord, size=160, **PLAIN)
        assert done.steps["background"]["r"]["scope"] == "field"
        assert "scope" not in own.steps["background"]["r"]
        x0, y0 = done.images["r"].meta["cutout_origin"]
        window = (slice(y0, y0 + 160), slice(x0, x0 + 160))
        truth = galaxies("r")[window]
        residual = done.images["r"].data - truth
        yy, xx = np.mgrid[0:160, 0:160]
        far = np.hypot(xx - 79.5, yy - 79.5) > 8 * scale
        others = np.zeros(truth.shape, bool)
        for gx, gy, _amplitude, gscale in GALAXIES:
            others |= np.hypot(xx + x0 - gx, yy + y0 - gy) < 8 * gscale
        sky_pixels = far & ~others
        # The sky (-0.25 to 1.25 sigma over the frame) is gone to a tenth of
        # the noise in every quadrant of the cutout.
        for sx in (-1, 1):
            for sy in (-1, 1):
                quadrant = sky_pixels & (np.sign(xx - 79.5) == sx)
                quadrant &= np.sign(yy - 79.5) == sy
                assert abs(np.median(residual[quadrant])) < 0.1 * SIGMA
        # The galaxy keeps its flux.
        aperture = np.hypot(xx - 79.5, yy - 79.5) < 5 * scale
        assert done.images["r"].data[aperture].sum() == pytest.approx(
            truth[aperture].sum(), rel=0.03
        )
        # With the cutout's own estimate, the maps differ by a background
        # change only: smooth, and a small part of the noise.
        for band in BANDS:
            change = own.images[band].data - done.images[band].data
            assert np.nanmax(np.abs(change)) < 0.25 * SIGMA
            assert np.nanstd(change) < 0.1 * SIGMA
        # Same pixels flagged off the image or bad.
        np.testing.assert_array_equal(done.coverage, own.coverage)


def _cut(images, window, **replace):
    """Every band's image cut to ``window`` (data, WCS and noise)."""
    return {
        b: images[b].replace(
            data=images[b].data[window],
            wcs=images[b].wcs.slice(window),
            noise=images[b].noise[window],
            **replace,
        )
        for b in BANDS
    }


def test_cutouts_given_whole_take_the_background_given(field):
    images, backgrounds = field
    window = (slice(300, 400), slice(400, 500))
    cut = _cut(images, window)
    given = {b: (backgrounds[b][0][window], backgrounds[b][1]) for b in BANDS}
    done = prepare_target(cut, backgrounds=given, **PLAIN)
    subtracted = {b: cut[b].replace(data=cut[b].data - given[b][0]) for b in BANDS}
    reference = prepare_target(subtracted, background=False, **PLAIN)
    for band in BANDS:
        np.testing.assert_array_equal(
            done.images[band].data, reference.images[band].data
        )
    assert done.steps["background"]["g"]["scope"] == "field"


def test_backgrounds_must_fit_their_images(field):
    images, backgrounds = field
    coord = sky_of(images, "r", 450, 350)
    wrong = dict(backgrounds, g=(backgrounds["g"][0][:-1], backgrounds["g"][1]))
    with pytest.raises(PicassoInputError, match="g-band background has shape"):
        prepare_target(images, coord, size=64, backgrounds=wrong, **PLAIN)
    partial = {b: backgrounds[b] for b in "ugr"}
    with pytest.raises(PicassoInputError, match="lack the i band"):
        prepare_target(images, coord, size=64, backgrounds=partial, **PLAIN)
    # Without the background step, a background given is not used.
    off = prepare_target(
        images, coord, size=64, backgrounds=wrong, background=False, **PLAIN
    )
    assert off.steps["background"] is False


# --- the field: its frames' backgrounds, kept until it is cleared -----------


def test_a_field_keeps_its_backgrounds_until_cleared(tmp_path):
    (fld,) = find_frames(write_field(tmp_path)).values()
    background, info = field_backgrounds(fld)["r"]
    assert background.shape == fld.image("r").shape == (300, 400)
    assert background.dtype == np.float32
    assert info["scope"] == "field"
    assert info["box_size"] == 64
    # Once per band: the same array again.
    backgrounds = field_backgrounds(fld)
    assert backgrounds["r"][0] is background
    assert set(backgrounds) == set(BANDS)
    # Not sent to Dask workers, and freed with the frames.
    assert fld.__getstate__()["cache"] == {}
    fld.clear()
    assert fld.cache == {}
    again, _ = field_backgrounds(fld)["r"]
    assert again is not background
    np.testing.assert_array_equal(again, background)


def test_the_plan_says_which_fields_take_their_background_whole(tmp_path):
    fields = find_frames(write_field(tmp_path))
    (fld,) = fields.values()
    wcs, (ny, nx) = fld.geometry()
    many = FIELD_BACKGROUND_MIN + 3
    xs = np.linspace(20, nx - 20, many)
    coords = wcs.pixel_to_world(xs, np.full(many, ny / 2))
    (unit,) = plan_units(fields, parse_targets(coords)).units
    assert unit.field_background
    # Split into tasks or subset, its galaxies keep the field's background.
    pieces = split_units([unit], size=4)
    assert len(pieces) > 1
    assert all(piece.field_background for piece in pieces)
    assert unit.subset({0}).field_background
    (few,) = plan_units(fields, parse_targets(coords[:2])).units
    assert not few.field_background


# --- faster, and the same --------------------------------------------------


@pytest.mark.parametrize(
    ("shape", "box"), [((1489, 2048), 64), ((800, 900), 64), ((384, 384), 64)]
)
def test_the_mesh_zoom_is_photutils(shape, box):
    rng = np.random.default_rng(5)
    yy, xx = np.mgrid[0 : shape[0], 0 : shape[1]]
    data = rng.normal(0, 1, shape) + 1e-3 * xx + 2 * np.sin(yy / 150)
    coverage = np.zeros(shape, bool)
    coverage[:3, :50] = True
    bkg = Background2D(
        data,
        box,
        coverage_mask=coverage,
        filter_size=3,
        bkg_estimator=MedianBackground(),
        exclude_percentile=50.0,
    )
    expected = bkg.background
    got = _sources._background_image(bkg, box, shape, coverage)
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-12)


def test_a_region_is_dilated_as_scipy_does():
    rng = np.random.default_rng(7)
    for _ in range(200):
        shape = tuple(int(n) for n in rng.integers(5, 50, 2))
        region = np.zeros(shape, bool)
        y, x = (int(rng.integers(0, n)) for n in shape)
        region[max(y - 2, 0) : y + int(rng.integers(1, 4)), x : x + 3] = True
        region[int(rng.integers(0, shape[0])), int(rng.integers(0, shape[1]))] = True
        iterations = int(rng.integers(1, 7))
        np.testing.assert_array_equal(
            _sources._dilated(region, iterations),
            ndimage.binary_dilation(region, iterations=iterations),
        )
    empty = np.zeros((10, 10), bool)
    assert not _sources._dilated(empty, 3).any()


def test_a_sky_seed_from_a_sample_of_a_whole_frame():
    rng = np.random.default_rng(9)
    data = rng.normal(0.01, SIGMA, (1200, 1000)).astype(np.float32)
    data[rng.random(data.shape) < 0.05] += 1.0
    bad = np.zeros(data.shape, bool)
    level = _sources._first_level(data, bad)
    assert level == pytest.approx(0.01, abs=0.01 * SIGMA)
    assert _sources._first_level(data, np.ones(data.shape, bool)) == 0.0


def test_bands_without_bad_pixels_align_as_with_them():
    images = frames(seed=3)
    window = (slice(200, 300), slice(300, 420))
    cut = _cut(images, window, mask=np.zeros((100, 120), bool))
    # One bad pixel in g: only g's mask has it (and its neighbours).
    mask = np.zeros((100, 120), bool)
    mask[50, 60] = True
    cut["g"] = cut["g"].replace(mask=mask)
    aligned = _grid.align_bands(cut)
    for band in "uiz":
        # Shifted by less than a pixel: the far column or row is off the
        # grid; nothing else is masked.
        masked = aligned[band].mask
        assert masked.sum() < 2 * (100 + 120)
        np.testing.assert_array_equal(masked, _grid.off_image(aligned[band]))
    g = aligned["g"]
    assert g.mask[49:52, 59:62].any()
    assert not _grid.off_image(g)[49:52, 59:62].any()
    assert g.mask.sum() - _grid.off_image(g).sum() <= 4


def test_fields_taking_their_background_whole_are_split_less(tmp_path):
    fields = find_frames(write_field(tmp_path))
    (fld,) = fields.values()
    wcs, (ny, nx) = fld.geometry()
    many = 40
    coords = wcs.pixel_to_world(np.linspace(20, nx - 20, many), np.full(many, ny / 2))
    (unit,) = plan_units(fields, parse_targets(coords)).units
    # One field for two workers: split, so that both have work.
    assert [len(u) for u in split_units([unit], 32, workers=2)] == [20, 20]
    # ... in two pieces, however many galaxies: each piece estimates the
    # field's background again (100 galaxies were once four tasks).
    hundred = FieldUnit(unit.field, unit.targets * 3, True)
    assert [len(u) for u in split_units([hundred], 32, workers=2)] == [60, 60]
    assert [len(u) for u in split_units([hundred], 32, workers=3)] == [40] * 3
    assert [len(u) for u in split_units([hundred], 32)] == [30] * 4
    # As many fields as workers: each field's frames read, and their
    # background estimated, once.
    assert [len(u) for u in split_units([unit, unit], 32, workers=2)] == [40, 40]
    # Without the field's background, as before.
    (plain,) = plan_units(fields, parse_targets(coords), field_background=False).units
    assert not plain.field_background
    assert [len(u) for u in split_units([plain, plain], 32, workers=2)] == [20] * 4
