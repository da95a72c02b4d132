import astropy.units as u
import numpy as np
import pytest
import torch

from picasso_astro.model import PicassoUNet, decode_quantized
from picasso_astro.properties import DEFAULT_PROPERTIES, PROPERTIES, get_property


def test_property_table_is_complete():
    assert set(DEFAULT_PROPERTIES) <= set(PROPERTIES)
    assert {"gas_mass", "stellar_age"} <= set(PROPERTIES)
    for prop in PROPERTIES.values():
        assert np.all(np.diff(prop.edges) > 0)
        assert prop.description
    assert get_property("stellar_mass").unit == u.dex(u.Msun / u.kpc**2)
    assert get_property("sfr").unit == u.dex(u.Msun / u.yr / u.kpc**2)
    assert get_property("gas_metallicity").unit == u.dimensionless_unscaled


def test_unknown_property_names_the_known_ones():
    with pytest.raises(KeyError, match="stellar_mass"):
        get_property("dust")


def test_decode_one_hot_bin_gives_bin_value_and_zero_sigma():
    edges = torch.tensor([0.0, 2.0, 4.0])
    logits = torch.tensor([-50.0, 50.0]).view(1, 2, 1, 1)
    residual = torch.zeros(1, 2, 1, 1)  # sigmoid(0) = 0.5
    value, sigma = decode_quantized(logits, residual, edges)
    assert value.item() == pytest.approx(3.0)
    assert sigma.item() == pytest.approx(0.0, abs=1e-6)


def test_decode_two_equal_bins_gives_mixture_mean_and_std():
    edges = torch.tensor([0.0, 2.0, 4.0])
    logits = torch.zeros(1, 2, 1, 1)
    residual = torch.full((1, 2, 1, 1), -50.0)  # residuals ~0: values 0 and 2
    value, sigma = decode_quantized(logits, residual, edges)
    assert value.item() == pytest.approx(1.0, abs=1e-5)
    assert sigma.item() == pytest.approx(1.0, abs=1e-5)


@pytest.mark.parametrize("shape", [(32, 32), (50, 37), (3, 70)])
def test_unet_accepts_any_size(shape):
    edges = {name: PROPERTIES[name].bin_edges for name in DEFAULT_PROPERTIES}
    net = PicassoUNet(6, edges, width=4, depth=3, groups=2).eval()
    with torch.inference_mode():
        value, sigma = net.predict(torch.randn(2, 6, *shape))
    assert value.shape == sigma.shape == (2, 5, *shape)
    for k, name in enumerate(DEFAULT_PROPERTIES):
        lo, hi = PROPERTIES[name].edges[[0, -1]]
        assert torch.all(value[:, k] >= lo) and torch.all(value[:, k] <= hi)
    assert torch.all(sigma >= 0)


def test_unet_rejects_bad_architecture():
    with pytest.raises(ValueError, match="positive"):
        PicassoUNet(6, {"sfr": [0, 1]}, depth=0)
    with pytest.raises(ValueError, match="increasing"):
        PicassoUNet(6, {"sfr": [1, 0]})
