"""Check that the mock population reproduces its input relations; draw figures.

    python scripts/validate_mocks.py [--n 600] [--shared-data ../shared/data]

Prints, and writes ``docs/_static/mock_examples.png`` (ugriz composites beside
the seven truth maps) and ``docs/_static/mock_relations.png``:

1. the star-forming main sequence (slope, intercept, scatter) and quenched
   fractions against Renzini & Peng (2015) and Peng et al. (2010);
2. gas and stellar mass-metallicity medians against Tremonti et al. (2004) and
   Gallazzi et al. (2005); HI fractions and sizes against Catinella et al.
   (2018) and Wang et al. (2016);
3. g - r colour against stellar mass for star-forming and passive mocks (the
   bimodality);
4. per-pixel truth integrated over the image against each galaxy's totals;
5. mock sky noise per band against the noise of the real SDSS frames;
6. checks with a stated tolerance, each PASS or FAIL: emission-line share of
   the r band, HI fractions, and the extremes the rare kinds must reach (the
   bright end of the SFR function, the size-mass relation of early types, the
   distribution of central stellar-mass surface density).

Relations 1-3 are measured on ordinary galaxies (``kind`` 0): the rare kinds
depart from them on purpose. The script exits non-zero if a check fails.
"""

import argparse
from pathlib import Path

import matplotlib
import numpy as np

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from picasso_astro.images import BANDS
from picasso_astro.properties import PROPERTIES
from picasso_astro.training.mocks import (
    KINDS,
    MEASURED_FIELDS,
    galaxy_seed,
    make_mock,
    measure_sky_noise,
    mock_sky_noise,
)
from picasso_astro.training.mocks import _relations as rel

ROOT = Path(__file__).resolve().parents[1]
NAMES = list(PROPERTIES)


def population(n):
    """Render ``n`` small mocks and collect their parameters and colours."""
    mocks = [make_mock(galaxy_seed(100, i), size=96) for i in range(n)]
    centre = NAMES.index("stellar_mass")
    keys = (
        "kind",
        "bulge_fraction",
        "log_re_bulge",
        "kpc_per_pixel",
        "line_fraction_r",
        "line_fraction_i",
        "redshift",
        "log_mstar",
        "log_sfr",
        "quenched",
        "oh_re",
        "logz_disc_re",
        "log_mhi",
        "log_d_hi",
    )
    table = {k: np.array([m.params[k] for m in mocks]) for k in keys}
    # Central Sigma*: the highest pixel within 2 pixels of the centre.
    table["sigma_centre"] = np.array(
        [
            m.truth[centre][
                round(m.params["y_centre"]) - 2 : round(m.params["y_centre"]) + 3,
                round(m.params["x_centre"]) - 2 : round(m.params["x_centre"]) + 3,
            ].max()
            for m in mocks
        ]
    )
    table["g_r"] = np.array(
        [-2.5 * np.log10(m.params["flux_g"] / m.params["flux_r"]) for m in mocks]
    )
    return table


def _normal(t):
    return {key: value[t["kind"] == 0] for key, value in t.items()}


def report_relations(t):
    """Print the population relations next to the input relations."""
    t = _normal(t)
    sf = t["quenched"] == 0
    slope, intercept = np.polyfit(t["log_mstar"][sf], t["log_sfr"][sf], 1)
    resid = t["log_sfr"][sf] - (slope * t["log_mstar"][sf] + intercept)
    print(
        "Star-forming main sequence (Renzini & Peng 2015: slope 0.76, intercept -7.64,"
    )
    print(
        f"  scatter {rel.MAIN_SEQUENCE_SCATTER}): slope {slope:.3f}, intercept "
        f"{intercept:.2f}, scatter {np.std(resid):.3f} dex ({sf.sum()} SF galaxies)"
    )
    print(
        "log M*  f_q(mock)  Peng+10  OH(mock)  Tremonti  logZ*(mock)  Gallazzi"
        "  fHI(mock)  Catinella  g-r SF  g-r passive"
    )
    for low in np.arange(8.5, 11.5, 0.5):
        sel = (t["log_mstar"] >= low) & (t["log_mstar"] < low + 0.5)
        mid = low + 0.25
        q = t["quenched"][sel] == 1
        gr_sf = np.median(t["g_r"][sel][~q]) if (~q).any() else np.nan
        gr_q = np.median(t["g_r"][sel][q]) if q.any() else np.nan
        fhi = np.median(t["log_mhi"][sel] - t["log_mstar"][sel])
        columns = (
            (mid, 6, 2),
            (q.mean(), 9, 2),
            (rel.quenched_fraction(mid), 8, 2),
            (np.median(t["oh_re"][sel]), 9, 3),
            (rel.gas_metallicity_mzr(mid)[0], 9, 3),
            (np.median(t["logz_disc_re"][sel]), 12, 2),
            (rel.stellar_metallicity_mzr(mid)[0], 9, 2),
            (fhi, 10, 2),
            (rel.hi_fraction(mid, 0.0)[0], 10, 2),
            (gr_sf, 7, 2),
            (gr_q, 12, 2),
        )
        print(
            " ".join(f"{value:{width}.{digits}f}" for value, width, digits in columns)
        )
    sf_lines = sf & (t["redshift"] < 0.05)
    print(
        "Emission lines in the r band of star-forming mocks at z < 0.05 (H-alpha in r):"
        f" median {100 * np.median(t['line_fraction_r'][sf_lines]):.1f} % of the flux"
    )
    predicted = rel.hi_mass_size(t["log_mhi"])[0]
    offset = t["log_d_hi"] - predicted
    print(
        f"HI mass-size (Wang+2016): median offset {np.median(offset):+.3f} dex, "
        f"scatter {np.std(offset):.3f} dex (raised HI masses for large discs included)"
    )


CHECKS = []


def check(name, value, low, high, unit=""):
    """Print one check with its tolerance and record whether it passed."""
    ok = bool(low <= value <= high)
    CHECKS.append(ok)
    print(
        f"  [{'PASS' if ok else 'FAIL'}] {name}: {value:.3g}{unit} "
        f"(tolerance {low:.3g} to {high:.3g}{unit})"
    )


def report_checks(t):
    """Print checks with tolerances: calibrations and the extremes of the kinds."""
    print("Checks (value, tolerance):")
    normal = _normal(t)
    sf = (normal["quenched"] == 0) & (normal["redshift"] < 0.02)
    check(
        "emission lines, median share of r-band flux, star-forming, z < 0.02 "
        "(H-alpha near the r filter's peak)",
        100 * np.median(normal["line_fraction_r"][sf]),
        1.5,
        3.0,
        " %",
    )
    for mid in (9.25, 10.25, 11.25):
        sel = np.abs(normal["log_mstar"] - mid) < 0.25
        offset = np.median(normal["log_mhi"][sel] - normal["log_mstar"][sel])
        offset -= rel.hi_fraction(mid, 0.0)[0]
        check(
            f"HI fraction at log M* = {mid} minus Catinella et al. (2018)",
            offset,
            -0.15,
            0.15,
            " dex",
        )
    kinds = list(KINDS)
    burst = t["kind"] == kinds.index("starburst")
    check(
        "bright end of the SFR function: highest SFR of the starbursts",
        np.max(t["log_sfr"][burst]),
        2.0,
        3.0,
        " dex M_sun/yr",
    )
    check(
        "share of mocks above 10 M_sun/yr (LIRG-like SFR)",
        100 * np.mean(t["log_sfr"] > 1.0),
        2.0,
        15.0,
        " %",
    )
    early = (normal["quenched"] == 1) & (normal["bulge_fraction"] > 0.5)
    log_mb = normal["log_mstar"] + np.log10(normal["bulge_fraction"])
    offset = normal["log_re_bulge"] - rel.spheroid_effective_radius(log_mb)[0]
    check(
        "size-mass of ordinary early types (B/T > 0.5): median offset from "
        "Shen et al. (2003)",
        np.median(offset[early]),
        -0.15,
        0.1,
        " dex",
    )
    compact = t["kind"] == kinds.index("compact")
    log_mb = t["log_mstar"] + np.log10(t["bulge_fraction"])
    offset = t["log_re_bulge"] - rel.spheroid_effective_radius(log_mb)[0]
    check(
        "size-mass of compact early types: median offset from Shen et al. (2003)",
        np.median(offset[compact]),
        -0.45,
        -0.1,
        " dex",
    )
    sigma = t["sigma_centre"]
    print(
        "  central Sigma* (log M_sun/kpc^2) percentiles 5/50/95/99: "
        + " / ".join(f"{v:.2f}" for v in np.percentile(sigma, [5, 50, 95, 99]))
    )
    check(
        "central Sigma*: share of mocks above 10^10 M_sun/kpc^2",
        100 * np.mean(sigma > 10.0),
        5.0,
        40.0,
        " %",
    )
    check(
        "central Sigma*: 99th percentile",
        np.percentile(sigma, 99),
        10.5,
        12.0,
        " dex",
    )


def report_integration(n):
    """Print how well per-pixel truth sums to the galaxy totals."""
    print(
        "Truth integrated over the image vs the galaxy's totals (dex, 256x256, z=0.08):"
    )
    worst = {"stellar_mass": 0.0, "sfr": 0.0, "hi": 0.0}
    for i in range(n):
        mock = make_mock(
            galaxy_seed(200, i),
            size=256,
            overrides={"redshift": 0.08, "companion": 0, "kind": "normal"},
        )
        area = mock.params["kpc_per_pixel"] ** 2
        for name, key in (
            ("stellar_mass", "log_mstar"),
            ("sfr", "log_sfr"),
            ("hi", "log_mhi"),
        ):
            k = NAMES.index(name)
            total = np.log10((10.0 ** mock.truth[k])[mock.truth_valid[k]].sum() * area)
            worst[name] = max(worst[name], abs(total - mock.params[key]))
    for name, value in worst.items():
        print(f"  {name:13s} largest |difference| over {n} galaxies: {value:.3f} dex")


def report_noise(shared_data):
    """Print real-frame and mock sky noise per band and field."""
    from astropy.io import fits

    print("Sky noise per band, nanomaggies (real frame / mock, ratio):")
    for field, conditions in MEASURED_FIELDS.items():
        mock = np.median(
            [
                mock_sky_noise(make_mock(galaxy_seed(300, i), size=128, field=field))
                for i in range(5)
            ],
            axis=0,
        )
        real = []
        for b, band in enumerate(BANDS):
            path = (
                shared_data
                / "sdss"
                / f"field-{field}"
                / f"frame-{band}-{field}.fits.bz2"
            )
            if path.is_file():
                with fits.open(path) as hdul:
                    real.append(measure_sky_noise(hdul[0].data))
            else:
                real.append(conditions["noise"][b])
        cells = "  ".join(
            f"{band}: {r:.4f}/{m:.4f} ({m / r:.2f})"
            for band, r, m in zip(BANDS, real, mock, strict=True)
        )
        print(f"  {field}: {cells}")


def rgb(mock):
    """Return an irg (Lupton et al. 2004) composite of a mock."""
    from astropy.visualization import make_lupton_rgb

    i, r, g = (mock.images[b].data for b in "irg")
    return make_lupton_rgb(i, r * 1.2, g * 1.6, minimum=-0.02, stretch=0.4, Q=8)


def example_figure(path):
    """Draw example mocks: composite beside the seven truth maps."""
    seeds = [(7, 1), (7, 4), (7, 11), (7, 17)]
    overrides = [
        {
            "log_mstar": 10.6,
            "redshift": 0.04,
            "quenched": 0.0,
            "log_sfr": 0.4,
            "arm_count": 2.0,
            "inclination_deg": 30.0,
        },
        {"log_mstar": 9.6, "redshift": 0.03, "quenched": 0.0, "log_sfr": -0.3},
        {"log_mstar": 11.1, "redshift": 0.06, "quenched": 1.0, "log_sfr": -1.2},
        {"log_mstar": 10.2, "redshift": 0.05},
    ]
    fig, axes = plt.subplots(len(seeds), 8, figsize=(16, 8.4))
    for row, (seed, over) in enumerate(zip(seeds, overrides, strict=True)):
        mock = make_mock(
            galaxy_seed(*seed), size=256, overrides={"kind": "normal", **over}
        )
        p = mock.params
        axes[row, 0].imshow(rgb(mock), origin="lower")
        axes[row, 0].set_title(
            f"log M*={p['log_mstar']:.1f} z={p['redshift']:.3f}\n"
            f"log SFR={p['log_sfr']:.1f}" + (" passive" if p["quenched"] else ""),
            fontsize=8,
        )
        for k, (name, prop) in enumerate(PROPERTIES.items()):
            ax = axes[row, k + 1]
            data = np.where(mock.truth_valid[k], mock.truth[k], np.nan)
            image = ax.imshow(data, origin="lower", cmap="viridis")
            cbar = fig.colorbar(image, ax=ax, fraction=0.046, pad=0.02)
            cbar.ax.tick_params(labelsize=6)
            if row == 0:
                ax.set_title(f"{name}\n{prop.log_label}", fontsize=7)
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle(
        "picasso_astro mock SDSS galaxies: gri composite and log10 truth maps "
        "(blank: no stars/gas)",
        fontsize=10,
    )
    fig.tight_layout()
    fig.savefig(path, dpi=62)
    plt.close(fig)
    print(f"wrote {path} ({path.stat().st_size / 1024:.0f} kB)")


def relations_figure(t, path):
    """Draw SFR, metallicity and colour against stellar mass."""
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.6))
    q = t["quenched"] == 1
    m = np.linspace(8.5, 11.5, 50)
    for ax, (y, label, curve) in zip(
        axes,
        (
            ("log_sfr", "log SFR / (M_sun/yr)", rel.main_sequence_sfr(m)),
            ("oh_re", "12 + log(O/H) at R_e", rel.gas_metallicity_mzr(m)[0]),
            ("g_r", "observed g - r", None),
        ),
        strict=True,
    ):
        ax.scatter(
            t["log_mstar"][~q], t[y][~q], s=4, c="tab:blue", label="star-forming"
        )
        ax.scatter(t["log_mstar"][q], t[y][q], s=4, c="tab:red", label="passive")
        if curve is not None:
            ax.plot(m, curve, "k-", label="input relation")
        ax.set_xlabel("log M* / M_sun")
        ax.set_ylabel(label)
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=70)
    plt.close(fig)
    print(f"wrote {path} ({path.stat().st_size / 1024:.0f} kB)")


def main():
    """Run every check and draw the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=600)
    parser.add_argument(
        "--shared-data", type=Path, default=ROOT.parent / "shared" / "data"
    )
    parser.add_argument("--no-figures", action="store_true")
    args = parser.parse_args()
    table = population(args.n)
    report_relations(table)
    report_integration(20)
    report_noise(args.shared_data)
    report_checks(table)
    if not args.no_figures:
        out = ROOT / "docs" / "_static"
        out.mkdir(parents=True, exist_ok=True)
        example_figure(out / "mock_examples.png")
        relations_figure(table, out / "mock_relations.png")
    if not all(CHECKS):
        raise SystemExit(f"{CHECKS.count(False)} check(s) failed")


if __name__ == "__main__":
    main()
