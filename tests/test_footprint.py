"""The target and what is not it, on synthetic scenes: footprint, bits, warnings."""

import astropy.units as u
import numpy as np
import pytest
from astropy.nddata import NDData
from astropy.wcs import WCS

from picasso_astro import PicassoWarning, predict
from picasso_astro.exceptions import (
    FootprintAtEdgeWarning,
    LargeImageWarning,
    PointSourceWarning,
    TargetNotFoundWarning,
)
from picasso_astro.images import BANDS, PIXEL_SCALE, BandImage
from picasso_astro.masks import MaskBit
from picasso_astro.preprocess import prepare_target

#: Sky noise per pixel (nanomaggies), as on SDSS frames.
NOISE = {"u": 0.045, "g": 0.015, "r": 0.023, "i": 0.035, "z": 0.18}
COLOUR = {"u": 0.3, "g": 0.7, "r": 1.0, "i": 1.3, "z": 1.5}
FWHM_PIX = 1.4 / PIXEL_SCALE


def _wcs(shape):
    wcs = WCS(naxis=2)
    wcs.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    wcs.wcs.crval = [150.0, 2.0]
    wcs.wcs.crpix = [shape[1] / 2 + 0.5, shape[0] / 2 + 0.5]
    wcs.wcs.cdelt = [-PIXEL_SCALE / 3600, PIXEL_SCALE / 3600]
    return wcs


def _star(shape, x, y, peak):
    yy, xx = np.mgrid[0 : shape[0], 0 : shape[1]]
    r2 = (xx - x) ** 2 + (yy - y) ** 2
    sigma = FWHM_PIX / 2.3548
    core = np.exp(-r2 / (2 * sigma**2))
    wings = 0.02 * (1 + r2 / (2 * FWHM_PIX) ** 2) ** -1.5  # a Moffat-like halo
    return peak * (core + wings)


def _galaxy(shape, x, y, amplitude, scale, axis_ratio=1.0):
    yy, xx = np.mgrid[0 : shape[0], 0 : shape[1]]
    r = np.hypot(xx - x, (yy - y) / axis_ratio)
    return amplitude * np.exp(-r / scale)


def scene(shape=(160, 160), *, parts=(), seed=0):
    """Five bands of noise plus ``parts``: (kind, x, y, r-band amplitude[, scale])."""
    rng = np.random.default_rng(seed)
    light = np.zeros(shape)
    for kind, x, y, amplitude, *rest in parts:
        if kind == "star":
            light += _star(shape, x, y, amplitude)
        else:
            light += _galaxy(shape, x, y, amplitude, *rest)
    images = {}
    for band in BANDS:
        data = COLOUR[band] * light + rng.normal(0, NOISE[band], shape)
        noise = np.full(shape, NOISE[band])
        images[band] = BandImage(
            band,
            data,
            wcs=_wcs(shape),
            noise=noise,
            psf_fwhm=1.4,
            psf=_psf(),
        )
    return images


def _psf():
    from picasso_astro._psf import gaussian_psf

    return gaussian_psf(FWHM_PIX, 41)


def _at(target, x, y, bit):
    return bool(target.flagged(bit)[round(y), round(x)])


def test_a_bright_star_and_a_neighbour_beside_a_galaxy():
    # The galaxy at the centre, a bright star 20" east, a neighbour 22" west.
    c = 79.5
    images = scene(
        parts=[
            ("galaxy", c, c, 1.5, 5.0, 0.7),
            ("star", c + 50, c + 8, 400.0),
            ("galaxy", c - 55, c - 10, 0.8, 3.0),
        ]
    )
    target = prepare_target(images, options={"match_psf": False})
    centre = (c, c)
    assert not target.mask[int(c), int(c)]
    assert _at(target, c + 50, c + 8, MaskBit.STAR)
    assert _at(target, c - 55, c - 10, MaskBit.NEIGHBOUR)
    assert not _at(target, c + 50, c + 8, MaskBit.NEIGHBOUR)
    # The star's halo is masked well beyond its core ...
    assert _at(target, c + 50 + 4 * FWHM_PIX, c + 8, MaskBit.STAR)
    # ... and its light is never part of the galaxy's footprint.
    yy, xx = np.mgrid[0:160, 0:160]
    near_star = np.hypot(xx - (c + 50), yy - (c + 8)) < 6 * FWHM_PIX
    assert not target.footprint[near_star].any()
    # The footprint holds the galaxy out to its faint isophote, and only it.
    footprint = target.footprint
    assert footprint[int(c) - 8 : int(c) + 9, int(c) - 8 : int(c) + 9].all()
    assert not footprint[:10].any() and not footprint[:, :10].any()
    info = target.steps["source_mask"]
    assert info["target_found"] and not info["target_point_like"]
    assert info["n_stars"] >= 1 and info["n_neighbours"] >= 1
    assert 23.5 < info["isophote_reached"] <= 25.0
    assert target.steps["warnings"] == []
    del centre


def test_bright_stars_get_spikes():
    c = 79.5
    images = scene(parts=[("galaxy", c, c, 1.5, 5.0), ("star", 30, 130, 300.0)])
    target = prepare_target(images, options={"match_psf": False})
    stars = target.flagged(MaskBit.STAR)
    diagonal = np.array([stars[130 - k, 30 + k] for k in range(120)])
    halo = np.sqrt(2) * np.argmin(diagonal)  # the halo's radius
    assert 20 < halo < 90
    # Along the row and the column through the star beyond the halo (spikes,
    # bleed trails), but not along the diagonal.
    far = int(halo) + 10
    assert stars[130, 30 + far] and stars[130 - far, 30]
    assert not stars[130 - int(far / np.sqrt(2)), 30 + int(far / np.sqrt(2))]
    assert not target.mask[int(c), int(c)]


def test_a_galaxy_at_the_frame_edge_is_flagged_only_off_the_frame():
    # A frame 300 px wide; the galaxy 30 px from its left edge; a 96-px cutout
    # reaches 18 px off the frame. Background and PSF matching run on.
    shape = (200, 300)
    images = scene(shape, parts=[("galaxy", 30, 100, 1.5, 4.0)])
    coord = images["r"].wcs.pixel_to_world(30, 100)
    target = prepare_target(images, coord, size=96, psf_fwhm=1.4)
    off = target.flagged(MaskBit.OFF_IMAGE)
    x_frame = np.arange(96) + target.images["r"].meta["cutout_origin"][0]
    assert np.array_equal(off.any(axis=0), x_frame < 0)
    assert np.array_equal(off.all(axis=0), x_frame < 0)
    assert not target.flagged(MaskBit.BAD_PIXEL).any()
    assert off.mean() == pytest.approx(18 / 96, abs=0.011)
    assert not target.mask[48, 48]


def test_blank_sky_is_not_a_galaxy(tiny_model_dir):
    images = scene()
    target = prepare_target(images, options={"match_psf": False})
    assert not target.steps["source_mask"]["target_found"]
    assert not target.footprint.any()
    assert [kind for kind, _ in target.steps["warnings"]] == ["TargetNotFoundWarning"]
    with pytest.warns(TargetNotFoundWarning, match="no source at the target"):
        (maps,) = predict(_nddata(images), model=tiny_model_dir)
    assert maps["stellar_mass"].mask.all()
    assert maps.total("stellar_mass", redshift=0.03) == 0 * u.Msun


def test_a_lone_star_is_not_a_galaxy(tiny_model_dir):
    images = scene(parts=[("star", 79.5, 79.5, 50.0)])
    target = prepare_target(images, options={"match_psf": False})
    assert target.steps["source_mask"]["target_point_like"]
    with pytest.warns(PointSourceWarning, match="point-like"):
        predict(_nddata(images), model=tiny_model_dir)


def test_a_galaxy_larger_than_its_cutout(tiny_model_dir):
    images = scene((64, 64), parts=[("galaxy", 31.5, 31.5, 3.0, 15.0)])
    with pytest.warns(FootprintAtEdgeWarning, match="larger than the cutout"):
        (maps,) = predict(_nddata(images), model=tiny_model_dir)
    assert maps.footprint[0].any() or maps.footprint[-1].any()


def test_whole_frames_as_cutouts_are_named():
    from picasso_astro._warnings_target import target_warnings

    frame = BandImage("r", np.zeros((1489, 2048)))
    found = target_warnings(
        "f", np.zeros((4, 4), np.int32), {}, frame, whole_image=True
    )
    assert found[0][0] == "LargeImageWarning"
    assert "targets=" in found[0][1]
    assert issubclass(LargeImageWarning, PicassoWarning)


def _nddata(images):
    return {
        band: NDData(image.data, wcs=image.wcs, unit="nanomaggy")
        for band, image in images.items()
    }


def test_pixels_brighter_than_training_are_flagged(tiny_model_dir):
    from picasso_astro import load_model
    from picasso_astro.exceptions import OutOfRangeWarning

    loaded = load_model(tiny_model_dir)
    loaded.config.input_range = {"r_max_nmgy": 1.0}
    images = scene(parts=[("galaxy", 79.5, 79.5, 3.0, 5.0)])
    with pytest.warns(OutOfRangeWarning, match="brighter in r than 1 nanomaggies"):
        (maps,) = predict(_nddata(images), model=loaded)
    bright = maps.flagged("out_of_range")
    assert bright[79, 79] and not bright[79, 100]
    # Flagged, not masked: the pixel is still the galaxy's.
    assert not maps["stellar_mass"].mask[79, 79]


def test_the_bundled_model_knows_its_input_range():
    from picasso_astro import load_model

    # Its mocks reach the bright centres of nearby real galaxies (a MaNGA
    # galaxy peaks at 9.2 nanomaggies per pixel in r), which model 0.1's
    # (6.1) did not.
    assert load_model().config.input_range["r_max_nmgy"] > 9.2
