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


def _tiny_unet(norm, upsample, seed=0):
    torch.manual_seed(seed)
    network = PicassoUNet(
        6,
        {"stellar_mass": [3.0, 6.0, 9.0, 12.0]},
        width=4,
        depth=2,
        groups=2,
        norm=norm,
        upsample=upsample,
    )
    # Non-trivial frozen statistics, as after training.
    for module in network.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.uniform_(-0.5, 0.5)
            module.running_var.uniform_(0.5, 2.0)
    return network.eval()


def _central_values(network, image, y0, x0, size=32):
    with torch.no_grad():
        value, _ = network.predict(image)
    return value[0, 0, y0 : y0 + size, x0 : x0 + size]


@pytest.mark.parametrize(("norm", "local"), [("batch", True), ("group", False)])
def test_maps_do_not_depend_on_the_cutout_with_frozen_normalisation(norm, local):
    """A local network gives the same pixels in a larger or shifted cutout."""
    network = _tiny_unet(norm, "bilinear")
    rng = np.random.default_rng(1)
    canvas = torch.from_numpy(rng.normal(size=(1, 6, 192, 192)).astype(np.float32))
    canvas[:, :, 80:112, 80:112] *= 20  # a bright galaxy in the middle
    small = canvas[:, :, 48:144, 48:144]  # 96 px around it
    shifted = canvas[:, :, 32:144, 48:160]  # 112 x 112, offset by 16 px
    reference = _central_values(network, canvas, 80, 80)
    in_small = _central_values(network, small, 32, 32)
    in_shifted = _central_values(network, shifted, 48, 32)
    for other in (in_small, in_shifted):
        difference = float((other - reference).abs().max())
        if local:
            assert difference < 1e-4
        else:
            assert difference > 1e-3


@pytest.mark.parametrize(
    ("upsample", "flat"), [("bilinear", True), ("transpose", False)]
)
def test_bilinear_upsampling_leaves_no_checkerboard(upsample, flat):
    network = _tiny_unet("batch", upsample)
    with torch.no_grad():
        value, _ = network.predict(torch.ones(1, 6, 96, 96))
    centre = value[0, 0, 32:64, 32:64]
    spread = float(centre.max() - centre.min())
    if flat:
        assert spread < 1e-4
    else:
        assert spread > 1e-3


def test_new_configs_are_local_and_old_ones_keep_their_layers():
    from picasso_astro.config import ModelConfig

    config = ModelConfig(width=4, depth=2)
    assert (config.norm, config.upsample) == ("batch", "bilinear")
    round_trip = ModelConfig.from_dict(config.to_dict())
    assert (round_trip.norm, round_trip.upsample) == ("batch", "bilinear")
    legacy = config.to_dict()
    del legacy["architecture"]["norm"], legacy["architecture"]["upsample"]
    old = ModelConfig.from_dict(legacy)
    assert (old.norm, old.upsample) == ("group", "transpose")
    assert any(isinstance(m, torch.nn.GroupNorm) for m in old.build_network().modules())


@pytest.mark.parametrize(
    ("key", "value"), [("sigma_scale", -1.0), ("interval_95", 0), ("interval_95", "2")]
)
def test_config_refuses_a_bad_uncertainty_calibration(key, value):
    from picasso_astro.config import ModelConfig
    from picasso_astro.exceptions import PicassoModelError

    config = ModelConfig(width=4, depth=2).to_dict()
    config["properties"]["sfr"][key] = value
    with pytest.raises(PicassoModelError, match=f"sfr.*{key}"):
        ModelConfig.from_dict(config)
    config["properties"]["sfr"][key] = 2.3
    assert ModelConfig.from_dict(config).properties["sfr"][key] == 2.3
