"""Emission-line physics shared by the IFU readers: dust, SFR, BPT, O/H.

Pure numpy on arrays of line fluxes and their 1-sigma errors; every relation
is cited where it is defined. NaN marks where a quantity is not defined.
"""

import numpy as np

__all__ = [
    "BALMER_DECREMENT",
    "METALLICITY_CALIBRATIONS",
    "N2_STAR_FORMING",
    "SFR_CALIBRATION",
    "bpt_class",
    "describe_metallicity",
    "dust_corrected_halpha",
    "log_n2",
    "oxygen_abundance",
]

#: Intrinsic H-alpha / H-beta ratio of case-B recombination at 10^4 K and
#: n_e = 100 cm^-3 (Osterbrock & Ferland 2006).
BALMER_DECREMENT = 2.86

#: Cardelli, Clayton & Mathis (1989) extinction curve with R_V = 3.1,
#: k(lambda) = A_lambda / E(B - V) at H-alpha and H-beta.
K_HALPHA = 2.53
K_HBETA = 3.61

#: log10 SFR [M_sun/yr] = log10 L(H-alpha) [erg/s] - 41.27 (Kennicutt & Evans
#: 2012, ARA&A 50, 531, table 1, from Murphy et al. 2011 / Hao et al. 2011,
#: Kroupa IMF).
SFR_CALIBRATION = {
    "log_c": 41.27,
    "reference": "Kennicutt & Evans (2012), log SFR = log L(Halpha) - 41.27, "
    "Kroupa IMF",
}

#: 12 + log(O/H) = a + b * index, valid for index in [low, high]; scatter is
#: the calibration's own 1-sigma (dex).
METALLICITY_CALIBRATIONS = {
    # Pettini & Pagel (2004, MNRAS 348, L59), eqs. 1 (N2, linear) and 3 (O3N2).
    ("PP04", "N2"): {"a": 8.90, "b": 0.57, "range": (-2.5, -0.3), "scatter": 0.18},
    ("PP04", "O3N2"): {"a": 8.73, "b": -0.32, "range": (-1.0, 1.9), "scatter": 0.14},
    # Marino et al. (2013, A&A 559, A114), eqs. 4 (N2) and 2 (O3N2).
    ("M13", "N2"): {"a": 8.743, "b": 0.462, "range": (-1.6, -0.2), "scatter": 0.16},
    ("M13", "O3N2"): {
        "a": 8.533,
        "b": -0.214,
        "range": (-1.1, 1.7),
        "scatter": 0.18,
    },
}

_LINES = ("Ha", "Hb", "NII", "OIII")

#: Below this log([NII]/Halpha) a spaxel that cannot be placed on the BPT
#: diagram ([OIII] or H-beta too faint) is taken as star-forming: AGN and
#: LINERs lie there only with strong [OIII] (Kewley et al. 2001 line above
#: log([OIII]/Hbeta) = 0.49).
N2_STAR_FORMING = -0.4

_REFERENCES = {
    "PP04": "Pettini & Pagel (2004)",
    "M13": "Marino et al. (2013)",
}


def _log_ratio(numerator, denominator):
    with np.errstate(divide="ignore", invalid="ignore"):
        ok = (numerator > 0) & (denominator > 0)
        ratio = np.where(ok, numerator / denominator, 1.0)
        return np.where(ok, np.log10(ratio), np.nan)


def _relative(flux, error):
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(flux > 0, error / flux, np.nan)


def dust_corrected_halpha(halpha, halpha_err, hbeta, hbeta_err):
    """Correct H-alpha for internal dust with the Balmer decrement.

    ``A(Halpha) = 2.5 k(Ha) / (k(Hb) - k(Ha)) log10((Ha/Hb) / 2.86)``
    with the Cardelli et al. (1989) curve, never below zero.

    Parameters
    ----------
    halpha, halpha_err, hbeta, hbeta_err : `~numpy.ndarray`
        Observed fluxes and 1-sigma errors, any one unit.

    Returns
    -------
    corrected : `~numpy.ndarray`
        Dust-corrected H-alpha flux; NaN where either line is not positive.
    log_error : `~numpy.ndarray`
        1-sigma error of ``log10(corrected)`` in dex, from the two lines'
        errors (the decrement's error counts only where it is above 2.86).
    a_halpha : `~numpy.ndarray`
        The extinction A(H-alpha) in magnitudes.
    """
    power = K_HALPHA / (K_HBETA - K_HALPHA)
    ratio = _log_ratio(halpha, hbeta)
    excess = np.maximum(ratio - np.log10(BALMER_DECREMENT), 0.0)
    a_halpha = 2.5 * power * excess
    corrected = np.where(np.isfinite(ratio), halpha * 10 ** (0.4 * a_halpha), np.nan)
    rel_a = _relative(halpha, halpha_err)
    rel_b = _relative(hbeta, hbeta_err)
    corrects = excess > 0
    log_error = np.where(
        corrects,
        np.hypot((1 + power) * rel_a, power * rel_b),
        rel_a,
    ) / np.log(10)
    return corrected, log_error, a_halpha


def log_n2(nii, halpha):
    """Return log10([NII] 6584 / H-alpha), NaN where either is not positive."""
    return _log_ratio(nii, halpha)


def bpt_class(oiii, hbeta, nii, halpha):
    """Classify spaxels on the [NII] BPT diagram (Baldwin, Phillips & Terlevich 1981).

    Parameters
    ----------
    oiii, hbeta, nii, halpha : `~numpy.ndarray`
        [OIII] 5007, H-beta, [NII] 6584 and H-alpha fluxes; NaN (or not
        positive) where a line is not measured with enough S/N.

    Returns
    -------
    klass : `~numpy.ndarray` of int8
        -1 unclassified (a line missing), 0 star-forming (below Kauffmann et
        al. 2003), 1 composite (between Kauffmann et al. 2003 and Kewley et
        al. 2001), 2 AGN or LINER (above the Kewley et al. 2001 maximum
        starburst line).
    """
    x = _log_ratio(nii, halpha)
    y = _log_ratio(oiii, hbeta)
    known = np.isfinite(x) & np.isfinite(y)
    with np.errstate(divide="ignore", invalid="ignore"):
        above_kewley = (x >= 0.47) | (y > 0.61 / (x - 0.47) + 1.19)
        above_kauffmann = (x >= 0.05) | (y > 0.61 / (x - 0.05) + 1.30)
    klass = np.where(above_kewley, 2, np.where(above_kauffmann, 1, 0))
    return np.where(known, klass, -1).astype(np.int8)


def oxygen_abundance(lines, errors, *, calibration="M13", indicators=("O3N2", "N2")):
    """Gas-phase 12 + log(O/H) from strong-line ratios.

    Each spaxel takes the first of ``indicators`` whose lines are all
    measured (finite and positive) and whose index lies in the calibration's
    range.

    Parameters
    ----------
    lines, errors : dict of str to `~numpy.ndarray`
        Fluxes and 1-sigma errors of ``"Ha"``, ``"Hb"``, ``"NII"`` (6584) and
        ``"OIII"`` (5007); NaN where a line lacks S/N.
    calibration : {"M13", "PP04"}
        Marino et al. (2013) or Pettini & Pagel (2004).
    indicators : sequence of {"O3N2", "N2"}
        In order of preference.

    Returns
    -------
    oh, oh_err : `~numpy.ndarray`
        12 + log(O/H) and its 1-sigma error from the line errors (dex); NaN
        where no indicator applies.
    used : `~numpy.ndarray` of int8
        Index into ``indicators`` of the one used, -1 where none.
    """
    n2 = _log_ratio(lines["NII"], lines["Ha"])
    o3n2 = _log_ratio(lines["OIII"], lines["Hb"]) - n2
    rel = {key: _relative(lines[key], errors[key]) for key in _LINES}
    index_err = {
        "N2": np.hypot(rel["NII"], rel["Ha"]) / np.log(10),
        "O3N2": np.sqrt(rel["NII"] ** 2 + rel["Ha"] ** 2 + rel["OIII"] ** 2
                        + rel["Hb"] ** 2) / np.log(10),
    }  # fmt: skip
    index = {"N2": n2, "O3N2": o3n2}
    shape = np.shape(n2)
    oh = np.full(shape, np.nan)
    oh_err = np.full(shape, np.nan)
    used = np.full(shape, -1, dtype=np.int8)
    for number, name in enumerate(indicators):
        coeffs = METALLICITY_CALIBRATIONS[(calibration, name)]
        low, high = coeffs["range"]
        value = index[name]
        with np.errstate(invalid="ignore"):
            usable = np.isfinite(value) & (value >= low) & (value <= high)
        take = usable & (used < 0)
        oh[take] = coeffs["a"] + coeffs["b"] * value[take]
        oh_err[take] = abs(coeffs["b"]) * index_err[name][take]
        used[take] = number
    return oh, oh_err, used


def describe_metallicity(calibration, indicators):
    """One line naming the calibration, for metadata and plots."""
    names = list(indicators)
    text = f"{_REFERENCES[calibration]} {names[0]}"
    if len(names) > 1:
        text += f" ({', then '.join(names[1:])} where {names[0]} is not measured)"
    return text
