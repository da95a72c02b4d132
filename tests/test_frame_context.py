"""The network sees the frame around a cutout, on the frame's pixel lattice.

Synthetic frames made here (one grid for all bands, a galaxy, noise): the
maps of two cutouts of the same galaxy, shifted by pixels that are not a
multiple of the network's down-sampling, agree on their common pixels when
the network sees the frame around them, and not when it sees the cutouts
alone.
"""

import numpy as np
import pytest
import torch
from astropy.wcs import WCS

from picasso_astro.config import ModelConfig
from picasso_astro.exceptions import PicassoInputError
from picasso_astro.images import BANDS, BandImage
from picasso_astro.preprocess import PreparationOptions, prepare_target

SHAPE = (400, 500)
SIGMA = 0.05
#: Nothing that depends on the cutout but the network: no background, no PSF
#: matching, no source masks.
PLAIN = {"background": False, "match_psf": False, "mask_sources": False}


def frames(seed=0):
    wcs = WCS(naxis=2)
    wcs.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    wcs.wcs.crval = [150.0, 2.0]
    wcs.wcs.crpix = [SHAPE[1] / 2 + 0.5, SHAPE[0] / 2 + 0.5]
    wcs.wcs.cdelt = [-0.396 / 3600, 0.396 / 3600]
    yy, xx = np.mgrid[0 : SHAPE[0], 0 : SHAPE[1]].astype(float)
    rng = np.random.default_rng(seed)
    galaxy = 2.0 * np.exp(-np.hypot(xx - 240.0, yy - 190.0) / 6.0)
    galaxy += 0.8 * np.exp(-np.hypot(xx - 290.0, yy - 230.0) / 3.0)
    return {
        band: BandImage(
            band,
            galaxy * (1 + 0.2 * k) + rng.normal(0, SIGMA, SHAPE),
            wcs=wcs,
            noise=np.full(SHAPE, SIGMA),
            psf_fwhm=1.4,
        )
        for k, band in enumerate(BANDS)
    }


@pytest.fixture(scope="module")
def images():
    return frames()


@pytest.fixture(scope="module")
def network():
    torch.manual_seed(1)
    net = ModelConfig(width=4, depth=2).build_network().eval()
    with torch.no_grad():  # running statistics other than the identity
        for module in net.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_mean.uniform_(-0.2, 0.2)
                module.running_var.uniform_(0.5, 2.0)
    return net


def _at(images, x, y):
    return images["r"].wcs.pixel_to_world(x, y)


def _maps(network, images, x, y, context, size=64):
    options = PreparationOptions.from_dict({**PLAIN, "context": context})
    prepared = prepare_target(images, _at(images, x, y), size=size, options=options)
    inputs, crop = prepared.network_input(multiple=network.multiple)
    with torch.no_grad():  # the heads' input: the maps are a function of it
        features = network.features(torch.from_numpy(inputs)[None])
    return features[0][(slice(None), *crop)].numpy(), prepared


def test_the_window_reaches_past_the_cutout_on_the_frame_lattice(images):
    shapes = set()
    for x, y in [(240.0, 190.0), (245.3, 201.0), (251.0, 187.6), (100.0, 40.0)]:
        options = PreparationOptions.from_dict({**PLAIN, "context": 20})
        prepared = prepare_target(images, _at(images, x, y), size=64, options=options)
        inputs, crop = prepared.network_input(multiple=16)
        window, _ = prepared.context.window(16)
        origin = prepared.context.origin
        assert (origin[0] + window[1].start) % 16 == 0
        assert (origin[1] + window[0].start) % 16 == 0
        for axis in (0, 1):
            assert crop[axis].start >= 20
            assert inputs.shape[1 + axis] - crop[axis].stop >= 20
        # the cutout within the window is the cutout's own input
        np.testing.assert_array_equal(
            inputs[(slice(None), *crop)], prepared.model_input()
        )
        shapes.add(inputs.shape)
    assert shapes == {(6, 128, 128)}  # one size (64 + 2 x 20 + 15, up to 16s)


def test_shifted_cutouts_get_the_same_maps_with_context(images, network):
    # shifts of 5 and 11 or 13 pixels: not multiples of the network's 4
    a, pa = _maps(network, images, 240.0, 190.0, context=40)
    b, pb = _maps(network, images, 245.0, 202.0, context=40)
    (ax, ay), (bx, by) = (
        pa.images["r"].meta["cutout_origin"],
        pb.images["r"].meta["cutout_origin"],
    )
    dx, dy = ax - bx, ay - by
    assert dx % 4 and dy % 4 and -16 < dx < 0 and -16 < dy < 0
    common_a = a[:, 16:48, 16:48]
    common_b = b[:, 16 + dy : 48 + dy, 16 + dx : 48 + dx]
    same = np.abs(common_a - common_b).max()
    # the cutouts alone: the maps depend on where each cutout ends
    a0, _ = _maps(network, images, 240.0, 190.0, context=0)
    b0, _ = _maps(network, images, 245.0, 202.0, context=0)
    differ = np.abs(a0[:, 16:48, 16:48] - b0[:, 16 + dy : 48 + dy, 16 + dx : 48 + dx])
    assert same < 1e-6 * np.abs(common_a).max()
    assert differ.max() > 1e-3 * np.abs(common_a).max()


def test_cutouts_and_whole_images_have_no_context(images):
    options = PreparationOptions.from_dict({**PLAIN, "context": 32})
    prepared = prepare_target(
        {band: image.replace(data=image.data[150:230, 200:280],
                             noise=image.noise[150:230, 200:280], wcs=None)
         for band, image in images.items()},
        options=options,
    )  # fmt: skip
    assert prepared.context is None
    inputs, crop = prepared.network_input(multiple=4)
    np.testing.assert_array_equal(inputs[(slice(None), *crop)], prepared.model_input())
    off = PreparationOptions.from_dict(PLAIN)
    assert off.context == 0  # the default: the cutout alone
    assert (
        prepare_target(images, _at(images, 240, 190), size=64, options=off).context
        is None
    )


def test_context_beyond_the_padding_is_refused(images):
    options = PreparationOptions.from_dict({**PLAIN, "context": 60, "pad": 64})
    prepared = prepare_target(images, _at(images, 240, 190), size=64, options=options)
    with pytest.raises(PicassoInputError, match="raise pad or lower context"):
        prepared.network_input(multiple=16)
    with pytest.raises(PicassoInputError, match="context must be"):
        PreparationOptions.from_dict({"context": -1})
