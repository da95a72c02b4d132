"""Totals, radial profiles and quicklook plots of `PropertyMaps`."""

import subprocess
import sys

import astropy.units as u
import numpy as np
import pytest
from astropy.cosmology import FlatLambdaCDM, Planck18
from astropy.wcs import WCS

from picasso_astro import PicassoInputError, PropertyMaps

PIXEL = 0.396  # arcsec
NAMES = ("sfr", "stellar_mass", "gas_metallicity")


def make_maps(shape=(40, 50), *, value=None, wcs=True):
    ny, nx = shape
    yy, xx = np.mgrid[0:ny, 0:nx]
    radius = np.hypot(xx - (nx - 1) / 2, yy - (ny - 1) / 2)
    if value is None:
        values = np.stack([-2 - 0.05 * radius, 8 - 0.1 * radius, 8.7 - 0.01 * radius])
    else:
        values = np.full((len(NAMES), ny, nx), value, dtype=float)
    sigmas = np.full_like(values, 0.2)
    mask = np.zeros(shape, bool)
    w = None
    if wcs:
        w = WCS(naxis=2)
        w.wcs.ctype = ["RA---TAN", "DEC--TAN"]
        w.wcs.crval = [150.0, 2.0]
        w.wcs.crpix = [nx / 2 + 0.5, ny / 2 + 0.5]
        w.wcs.cdelt = [-PIXEL / 3600, PIXEL / 3600]
    return PropertyMaps.from_arrays(
        values, sigmas, mask, names=NAMES, wcs=w, meta={"galaxy": "test", "model": "m"}
    )


def test_total_constant_map_with_distance():
    maps = make_maps(value=6.0)
    distance = 100 * u.Mpc
    total = maps.total("stellar_mass", distance=distance)
    kpc_per_pix = (distance * (PIXEL * u.arcsec).to_value(u.rad)).to(u.kpc)
    expected = 1e6 * 40 * 50 * kpc_per_pix.value**2
    assert total.unit == u.Msun
    assert total.value == pytest.approx(expected, rel=1e-4)
    # the mean: each pixel's log value has a 0.2 dex uncertainty, so its mean
    # linear value is 10**(ln(10) 0.04 / 2) higher
    mean = maps.total("stellar_mass", distance=distance, estimate="mean")
    assert mean.value == pytest.approx(
        expected * 10 ** (np.log(10) * 0.2**2 / 2), rel=1e-4
    )
    draws = 6.0 + 0.2 * np.random.default_rng(0).standard_normal(400_000)
    assert mean.value / expected == pytest.approx(np.mean(10**draws) / 1e6, rel=3e-3)
    with pytest.raises(PicassoInputError, match="estimate must be"):
        maps.total("stellar_mass", distance=distance, estimate="mode")


def test_total_sfr_unit_and_redshift_uses_cosmology():
    maps = make_maps(value=-2.0)
    planck = maps.total("sfr", redshift=0.05)
    assert planck.unit == u.Msun / u.yr
    d_a = Planck18.angular_diameter_distance(0.05)
    assert planck.value == pytest.approx(
        maps.total("sfr", distance=d_a).value, rel=1e-6
    )
    other = FlatLambdaCDM(H0=50, Om0=0.3)
    # A smaller H0 puts the galaxy further away: larger pixels, larger total.
    assert maps.total("sfr", redshift=0.05, cosmology=other) > planck


def test_total_excludes_masked_and_nonfinite_pixels():
    maps = make_maps(value=6.0)
    full = maps.total("stellar_mass", distance=10 * u.Mpc)
    nd = maps["stellar_mass"]
    nd.mask[:20, :] = True
    nd.data[30, 30] = np.nan
    part = maps.total("stellar_mass", distance=10 * u.Mpc)
    assert part.value == pytest.approx(full.value * (20 * 50 - 1) / (40 * 50))


def test_total_apertures():
    maps = make_maps(value=6.0)
    distance = 10 * u.Mpc
    scale = (distance * (1 * u.arcsec).to_value(u.rad)).to(u.kpc) / u.arcsec
    by_angle = maps.total("stellar_mass", distance=distance, aperture=4 * u.arcsec)
    by_length = maps.total(
        "stellar_mass", distance=distance, aperture=(4 * u.arcsec * scale).to(u.pc)
    )
    assert by_angle.value == pytest.approx(by_length.value)
    full = maps.total("stellar_mass", distance=distance)
    fraction = (np.pi * (4 / PIXEL) ** 2) / (40 * 50)
    assert by_angle.value / full.value == pytest.approx(fraction, rel=0.05)
    pixels = np.zeros((40, 50), bool)
    pixels[:10, :10] = True
    boxed = maps.total("stellar_mass", distance=distance, aperture=pixels)
    assert boxed.value == pytest.approx(full.value / 20)
    # An off-centre aperture (sky position) loses the part off the map.
    corner = maps.wcs.pixel_to_world(0, 0)
    off = maps.total(
        "stellar_mass", distance=distance, aperture=4 * u.arcsec, center=corner
    )
    yy, xx = np.mgrid[0:40, 0:50]
    inside = np.count_nonzero(np.hypot(xx, yy) * PIXEL <= 4)
    assert off.value == pytest.approx(full.value * inside / (40 * 50), rel=1e-3)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({}, "exactly one of redshift"),
        ({"redshift": 0.1, "distance": 1 * u.Mpc}, "exactly one of redshift"),
        ({"redshift": -1}, "positive"),
        ({"distance": 5 * u.s}, "length"),
        ({"distance": 1 * u.Mpc, "aperture": 3 * u.kg}, "radius"),
        ({"distance": 1 * u.Mpc, "aperture": np.ones((2, 2), bool)}, "boolean"),
        ({"distance": 1 * u.Mpc, "center": "middle"}, "center"),
    ],
)
def test_total_errors(kwargs, match):
    maps = make_maps()
    if "center" in kwargs:
        kwargs["aperture"] = 1 * u.arcsec
    with pytest.raises(PicassoInputError, match=match):
        maps.total("stellar_mass", **kwargs)


def test_total_refuses_non_surface_densities_and_no_wcs():
    with pytest.raises(PicassoInputError, match="not a surface density"):
        make_maps().total("gas_metallicity", redshift=0.1)
    with pytest.raises(PicassoInputError, match="no celestial WCS"):
        make_maps(wcs=False).total("stellar_mass", redshift=0.1)
    with pytest.raises(KeyError, match="no map of 'hi'"):
        make_maps().total("hi", redshift=0.1)


def test_radial_profile_recovers_gradient():
    maps = make_maps()
    profile = maps.radial_profile("stellar_mass")
    assert profile.colnames[:3] == ["radius", "r_in", "r_out"]
    assert profile["radius"].unit == u.arcsec
    assert profile["value"].unit == u.dex(u.Msun / u.kpc**2)
    r_pix = profile["radius"].to_value(u.arcsec) / PIXEL
    # The median of a linear function of radius, at the mean radius of the annulus.
    np.testing.assert_allclose(profile["value"].value, 8 - 0.1 * r_pix, atol=0.04)
    np.testing.assert_allclose(profile["uncertainty"].value, 0.2, rtol=1e-6)
    assert np.all(profile["n_pixels"] > 0)
    # Default annuli: two pixels wide, out to the largest circle on the map.
    assert profile["r_out"][-1].to_value(u.arcsec) <= 19.5 * PIXEL + 1e-6
    mean = maps.radial_profile("gas_metallicity", statistic="mean", bins=5)
    assert len(mean) == 5
    assert mean["value"].unit == u.dimensionless_unscaled


def test_radial_profile_bins_centre_and_masks():
    maps = make_maps()
    maps["sfr"].mask[:, :] = True
    edges = np.array([0, 1, 2, 3]) * u.arcsec
    profile = maps.radial_profile("sfr", bins=edges)
    assert len(profile) == 3
    assert np.all(profile["n_pixels"] == 0)
    assert np.all(np.isnan(profile["value"].value))
    centre = maps.wcs.pixel_to_world(10, 10)
    edges = np.array([0.0, 1.05, 2.05, 3.05]) * u.arcsec
    by_sky = maps.radial_profile("stellar_mass", center=centre, bins=edges)
    by_pix = maps.radial_profile("stellar_mass", center=(10, 10), bins=edges)
    np.testing.assert_allclose(by_sky["value"].value, by_pix["value"].value)
    kpc = maps.radial_profile("stellar_mass", distance=10 * u.Mpc, bins=3)
    assert kpc["radius_kpc"].unit == u.kpc


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"statistic": "mode"}, "statistic"),
        ({"bins": 0}, "positive"),
        ({"bins": [1, 2]}, "number of annuli"),
        ({"bins": np.array([2, 1]) * u.arcsec}, "increasing"),
        ({"bins": np.array([0, 1]) * u.kpc}, "angles"),
    ],
)
def test_radial_profile_errors(kwargs, match):
    with pytest.raises(PicassoInputError, match=match):
        make_maps().radial_profile("sfr", **kwargs)


def test_import_does_not_import_matplotlib():
    code = "import sys, picasso_astro; print('matplotlib' in sys.modules)"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "False"


def test_plot_maps_on_wcs_axes():
    pytest.importorskip("matplotlib")
    import matplotlib as mpl

    mpl.use("Agg")
    import matplotlib.pyplot as plt
    from astropy.visualization.wcsaxes import WCSAxes

    maps = make_maps()
    maps["sfr"].mask[:5, :5] = True
    figure = maps.plot()
    try:
        panels = [ax for ax in figure.axes if isinstance(ax, WCSAxes)]
        assert len(panels) == 3
        colorbars = [ax for ax in figure.axes if not isinstance(ax, WCSAxes)]
        assert len(colorbars) == 3
        labels = [ax.get_ylabel() for ax in colorbars]
        assert any("M_{\\odot}" in label and "kpc" in label for label in labels)
        # Masked pixels are blank: masked in the image's array.
        image = panels[0].get_images()[0]
        assert image.get_array().mask[0, 0]
        assert not image.get_array().mask[20, 20]
    finally:
        plt.close(figure)
    figure = maps.plot(["stellar_mass"], uncertainty=True)
    try:
        assert len([ax for ax in figure.axes if isinstance(ax, WCSAxes)]) == 2
    finally:
        plt.close(figure)
    figure = make_maps(wcs=False).plot(["sfr"])
    plt.close(figure)


def test_plot_radial_profiles():
    pytest.importorskip("matplotlib")
    import matplotlib as mpl

    mpl.use("Agg")
    import matplotlib.pyplot as plt

    figure = make_maps().plot_radial_profiles(bins=4)
    try:
        visible = [ax for ax in figure.axes if ax.get_visible()]
        assert len(visible) == 3
        assert visible[0].get_xlabel() == "radius [arcsec]"
    finally:
        plt.close(figure)
    with pytest.raises(KeyError):
        make_maps().plot_radial_profiles(["hi"])
    with pytest.raises(PicassoInputError):
        make_maps().plot([])


def _with_bits(shape=(40, 50)):
    """Maps of 10^6 per pixel with a disc footprint, a neighbour, a star."""
    from picasso_astro.masks import MaskBit

    ny, nx = shape
    yy, xx = np.mgrid[0:ny, 0:nx]
    radius = np.hypot(xx - (nx - 1) / 2, yy - (ny - 1) / 2)
    bits = np.where(radius > 12, int(MaskBit.SKY), 0)
    bits[(xx > 40) & (yy > 30)] |= int(MaskBit.NEIGHBOUR)
    bits[18:21, 30:33] |= int(MaskBit.STAR)
    bits[radius < 3] |= int(MaskBit.LOW_SN)  # informational: still used
    base = make_maps(shape, value=6.0)
    values = np.stack([base[name].data for name in NAMES])
    sigmas = np.stack([base[name].uncertainty.array for name in NAMES])
    maps = PropertyMaps.from_arrays(
        values, sigmas, names=NAMES, wcs=base.wcs, bitmask=bits
    )
    return maps, radius


def test_totals_and_profiles_use_the_footprint():
    from picasso_astro.masks import MaskBit

    maps, radius = _with_bits()
    inside = (radius <= 12) & ~maps.flagged("star")
    assert np.array_equal(maps.footprint, inside)
    assert np.array_equal(maps["sfr"].mask, ~inside)
    assert maps.flagged("neighbour", MaskBit.STAR).sum() == 9 + 9 * 9
    assert not maps.flagged("low_sn")[radius >= 3].any()
    distance = 100 * u.Mpc
    per_pixel = maps.total("stellar_mass", distance=distance) / inside.sum()
    with_sky = maps.total("stellar_mass", distance=distance, footprint=False)
    no_sky = ~maps.flagged("neighbour", "star")
    ratio = (with_sky / per_pixel).to_value(u.dimensionless_unscaled)
    assert ratio == pytest.approx(no_sky.sum(), rel=1e-6)
    profile = maps.radial_profile("stellar_mass")
    assert profile["r_out"][-1].to_value(u.arcsec) <= (12 + 1.5) * PIXEL + 1e-6
    longer = maps.radial_profile("stellar_mass", footprint=False)
    assert len(longer) > len(profile)
    with pytest.raises(PicassoInputError, match="the reasons are"):
        maps.flagged("clouds")


def test_bitmask_round_trips_through_fits(tmp_path):
    maps, _ = _with_bits()
    path = tmp_path / "bits.fits"
    maps.write(path)
    back = PropertyMaps.read(path)
    np.testing.assert_array_equal(back.bitmask, maps.bitmask)
    np.testing.assert_array_equal(back["sfr"].mask, maps["sfr"].mask)
    assert back.total("sfr", redshift=0.03) == maps.total("sfr", redshift=0.03)


def test_plot_without_matplotlib_says_how_to_install(monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_matplotlib(name, *args, **kwargs):
        if name.startswith("matplotlib"):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_matplotlib)
    with pytest.raises(ImportError, match=r"picasso_astro\[plot\]"):
        make_maps().plot()


def test_plot_with_uncertainty_keeps_rows_of_three():
    import matplotlib as mpl

    mpl.use("Agg")
    import matplotlib.pyplot as plt

    figure = make_maps().plot(uncertainty=True)
    try:
        width, height = figure.get_size_inches()
        assert width <= 3 * 4.2 + 1e-6 and height >= 2 * 3.6 - 1e-6
    finally:
        plt.close(figure)
