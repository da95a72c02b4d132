"""Evaluate a model on held-out galaxies, against a colour-M/L baseline.

For each property: per-pixel RMS and bias of ``predicted - true`` (log10) on
unmasked, uncontaminated pixels with valid truth and r-band S/N > 3; scatter
and bias of the integrated value within two half-mass radii; residuals against
radius; and the calibration of the predicted uncertainty (fraction of true
values within the predicted 68 % and 95 % intervals: 1 sigma and the model's
``interval_95`` sigmas). For stellar mass, a per-pixel colour-M/L relation
``log Sigma* = a + b (g - i) + c mu_i`` fitted by least squares on the
training pixels is evaluated on the same test pixels.
"""

import json
from itertools import pairwise
from pathlib import Path

import numpy as np
import torch

from .._inference import resolve_device
from ..exceptions import PicassoInputError
from ..preprocess import to_model_input
from ..properties import PROPERTIES
from ._data import dataset_property_names, normalize_item
from .mocks._kinds import KINDS

__all__ = [
    "RADIUS_BINS",
    "calibrate_uncertainty",
    "evaluate",
    "fit_colour_ml_baseline",
    "format_table",
    "half_mass_radius",
    "plot_metrics",
]

#: Edges of the radius bins (in half-mass radii) of the residual profiles.
RADIUS_BINS = (0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 5.0, np.inf)


def _noise_r(item):
    noise = item["noise"]
    if noise is not None:
        return np.broadcast_to(noise[2], item["mask"].shape)
    r = item["images"][2][~item["mask"]]
    if r.size == 0:
        return np.full(item["mask"].shape, np.inf, np.float32)
    sigma = 1.4826 * np.median(np.abs(r - np.median(r)))
    return np.full(item["mask"].shape, max(sigma, 1e-30), np.float32)


def half_mass_radius(surface_density, mask=None):
    """Centre and half-mass radius (pixels) of a linear surface-density map.

    Parameters
    ----------
    surface_density : `~numpy.ndarray`
        ``(ny, nx)`` linear values (not log), zero where there is nothing.
    mask : `~numpy.ndarray`, optional
        True on pixels to ignore.

    Returns
    -------
    centre : tuple of float
        ``(y, x)`` of the mass-weighted centroid.
    radius : float
        Radius of the circle about the centre holding half the mass.
    """
    values = np.where(np.isfinite(surface_density), surface_density, 0.0)
    if mask is not None:
        values = np.where(mask, 0.0, values)
    values = np.clip(values, 0, None)
    total = values.sum()
    ny, nx = values.shape
    yy, xx = np.mgrid[0:ny, 0:nx]
    if total <= 0:
        return ((ny - 1) / 2, (nx - 1) / 2), float("nan")
    cy, cx = (values * yy).sum() / total, (values * xx).sum() / total
    radius = np.hypot(yy - cy, xx - cx).ravel()
    order = np.argsort(radius)
    cumulative = np.cumsum(values.ravel()[order])
    k = int(np.searchsorted(cumulative, 0.5 * total))
    return (float(cy), float(cx)), float(max(radius[order][k], 0.5))


def _colour_features(images, pixel_scale):
    g, i = images[1], images[3]
    ok = (g > 0) & (i > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        colour = -2.5 * np.log10(g / i)
        mu_i = 22.5 - 2.5 * np.log10(i) + 5 * np.log10(pixel_scale)
    return ok, colour, mu_i


def _any_valid(dataset, indices, name):
    """Return whether any galaxy has valid ``name`` truth (IFU sets may not)."""
    plane = dataset_property_names(dataset).index(name)
    for index in indices:
        item = normalize_item(dataset[index], index=index)
        if _valid(item, plane, name).any():
            return True
    return False


def fit_colour_ml_baseline(
    dataset, *, indices=None, pixel_scale=0.396, snr_min=3.0, max_pixels=200_000
):
    """Fit ``log Sigma* = a + b (g - i) + c mu_i`` on training pixels.

    Parameters
    ----------
    dataset : `torch.utils.data.Dataset`
        With ``stellar_mass`` among its ``property_names``.
    indices : sequence of int, optional
        The training galaxies (all by default).
    pixel_scale : float
        Arcsec per pixel, for the surface brightness ``mu_i`` (mag arcsec^-2).
    snr_min : float
        Use unmasked pixels with valid truth and r-band S/N above this, and
        positive g and i fluxes.
    max_pixels : int
        At most this many pixels (a reproducible random subset).

    Returns
    -------
    coefficients : `~numpy.ndarray`
        ``(a, b, c)``.
    """
    names = dataset_property_names(dataset)
    if "stellar_mass" not in names:
        msg = "the colour-M/L baseline needs stellar_mass truth in the dataset"
        raise PicassoInputError(msg)
    plane = names.index("stellar_mass")
    indices = range(len(dataset)) if indices is None else indices
    rows, targets = [], []
    for index in indices:
        item = normalize_item(dataset[index], index=index)
        ok, colour, mu_i = _colour_features(item["images"], pixel_scale)
        truth = item["truth"][plane]
        valid = _valid(item, plane, "stellar_mass")
        snr = item["images"][2] / _noise_r(item)
        use = ok & valid & (snr > snr_min)
        rows.append(np.stack([np.ones(use.sum()), colour[use], mu_i[use]], axis=1))
        targets.append(truth[use])
    design = np.concatenate(rows) if rows else np.zeros((0, 3))
    target = np.concatenate(targets) if targets else np.zeros(0)
    if len(target) < 3:
        msg = "too few training pixels with S/N > 3 to fit the colour-M/L baseline"
        raise PicassoInputError(msg)
    if len(target) > max_pixels:
        keep = np.random.default_rng(0).choice(len(target), max_pixels, replace=False)
        design, target = design[keep], target[keep]
    coefficients, *_ = np.linalg.lstsq(design, target, rcond=None)
    return coefficients


def _valid(item, plane, name):
    truth = item["truth"][plane]
    finite = np.isfinite(truth)
    if item["truth_valid"] is not None:
        valid = item["truth_valid"][plane] & finite
    else:
        valid = finite & (np.where(finite, truth, -np.inf) > PROPERTIES[name].edges[0])
    bad = item["mask"]
    if item.get("contaminant") is not None:
        bad = bad | np.asarray(item["contaminant"], bool)
    return valid & ~bad


#: The r-band surface brightness (nanomaggies per pixel) above which a
#: galaxy's centre counts as bright: the 98th percentile of the mocks that
#: model 0.1 was trained on, beyond which it collapsed.
BRIGHT_CENTRE_NMGY = 6.1

#: Galaxy subsets reported separately, from the mock parameters where known:
#: the first five for any mock, then one per rare kind of mocks 2.0
#: (``kind_<name>``, from the ``is_<name>`` flags) and those on real skies.
SUBSETS = (
    "all",
    "bright_centre",
    "starburst",
    "early_type",
    "nearby",
    *(f"kind_{name}" for name in KINDS[1:]),
    "real_sky",
)


def galaxy_subsets(item):
    """Return which of `SUBSETS` a dataset item belongs to.

    ``bright_centre``: the brightest r-band pixel of the central 4 x 4 exceeds
    `BRIGHT_CENTRE_NMGY`; from mock parameters, ``starburst``: at least
    0.5 dex above the star-forming main sequence; ``early_type``: quenched
    with a Sersic index of 4 or more; ``nearby``: redshift below 0.02;
    ``kind_<name>``: the mock's kind (`~picasso_astro.training.mocks.KINDS`);
    ``real_sky``: rendered into a real SDSS frame. Subsets that need
    parameters an item lacks are False.
    """
    image = item["images"][2]
    ny, nx = image.shape
    centre = image[ny // 2 - 2 : ny // 2 + 2, nx // 2 - 2 : nx // 2 + 2]
    params = item.get("params") or {}

    def param(key):
        value = params.get(key, np.nan)
        return float(value) if np.isscalar(value) else np.nan

    return {
        "all": True,
        "bright_centre": bool(np.nanmax(centre) > BRIGHT_CENTRE_NMGY),
        "starburst": param("delta_ms") >= 0.5,
        "early_type": param("quenched") == 1 and param("sersic_n") >= 4,
        "nearby": param("redshift") < 0.02,
        **{f"kind_{name}": param(f"is_{name}") == 1 for name in KINDS[1:]},
        "real_sky": param("real_sky") == 1,
    }


def _finite(values):
    values = np.asarray(values, dtype=float)
    return values[np.isfinite(values)]


def _integrated_residual(name, value, truth, valid, aperture):
    """Predicted minus true integrated value (dex) within the aperture.

    Surface densities are summed as `~picasso_astro.maps.PropertyMaps.total`
    sums them by default (``10**value``); other properties are averaged.
    """
    if PROPERTIES[name].surface_density:
        inside = aperture & np.isfinite(truth)
        if not inside.any():
            return np.nan
        true_total = np.log10(np.sum(10.0 ** truth[inside].astype(float)))
        return float(np.log10(np.sum(10.0 ** value[inside].astype(float))) - true_total)
    inside = aperture & valid
    if not inside.any():
        return np.nan
    return float(np.mean(value[inside]) - np.mean(truth[inside]))


def _peak_residual(value, truth, usable):
    """Predicted minus true value (dex), 3 x 3 means about the true peak."""
    if not usable.any():
        return np.nan
    y, x = np.unravel_index(np.argmax(np.where(usable, truth, -np.inf)), truth.shape)
    box = (slice(max(y - 1, 0), y + 2), slice(max(x - 1, 0), x + 2))
    return float(np.mean(value[box]) - np.mean(truth[box]))


def _worst_pixels(worst):
    worst = _finite(worst)
    if not worst.size:
        return {"n": 0, "min": None, "fraction_below_1dex": None}
    return {
        "n": int(worst.size),
        "min": float(worst.min()),
        "fraction_below_1dex": float(np.mean(worst < -1.0)),
    }


def _decile_bias(truth, residual):
    """Mean residual in each decile of the true value (lowest first)."""
    if truth.size < 10:
        return None
    edges = np.percentile(truth, np.linspace(0, 100, 11))
    which = np.clip(np.searchsorted(edges, truth, side="right") - 1, 0, 9)
    return [
        float(residual[which == k].mean()) if np.any(which == k) else None
        for k in range(10)
    ]


def _integrated_stats(residual):
    residual = _finite(residual)
    if not residual.size:
        return {"n": 0, "scatter": None, "bias": None}
    return {
        "n": int(residual.size),
        "scatter": float(np.std(residual)),
        "bias": float(np.mean(residual)),
    }


def _stats(residual):
    residual = np.asarray(residual, dtype=float)
    if residual.size == 0:
        return {"n": 0, "rms": None, "bias": None, "scatter": None}
    return {
        "n": int(residual.size),
        "rms": float(np.sqrt(np.mean(residual**2))),
        "bias": float(np.mean(residual)),
        "scatter": float(np.std(residual)),
    }


def _predictions(network, config, dataset, indices, device):
    """Yield ``(item, value, sigma)`` for each galaxy, as numpy arrays."""
    for index in indices:
        item = normalize_item(dataset[index], index=index)
        x = torch.from_numpy(
            to_model_input(item["images"], item["mask"], softening=config.softening)
        )
        with torch.no_grad():
            value, sigma = network.predict(x[None].to(device))
        yield item, value[0].float().cpu().numpy(), sigma[0].float().cpu().numpy()


def calibrate_uncertainty(model, dataset, *, indices=None, device="auto", snr_min=3.0):
    """Fit each property's ``sigma_scale`` and ``interval_95`` on held-out galaxies.

    The scale is the 68.27th percentile of ``|predicted - true| / sigma`` over
    the pixels that `evaluate` scores, so that 68 % of true values fall within
    the scaled 1-sigma interval there. ``interval_95`` is the 95th percentile
    of the same ratio in scaled sigmas: the half-width of the 95 % interval,
    wider than a Gaussian's 1.96 where errors have heavy tails.

    Parameters
    ----------
    model : `~picasso_astro.hub.PicassoModel`
        Its configuration and network heads get the fitted scales.
    dataset : `torch.utils.data.Dataset`
        Galaxies with truth, never used for training.
    indices : sequence of int, optional
        The galaxies to use (all by default).
    device : str
    snr_min : float
        Pixels count when their r-band S/N exceeds this.

    Returns
    -------
    scales : dict of str to float
        Property name to its scale (properties without truth are left as they
        were and not listed); the configuration gets ``interval_95`` too.
    """
    device = resolve_device(device)
    network = model.network.to(device).eval()
    for head in network.heads.values():
        head.sigma_scale = 1.0
    names = dataset_property_names(dataset)
    properties = [n for n in model.property_names if n in names]
    ratios = {name: [] for name in properties}
    indices = list(range(len(dataset)) if indices is None else indices)
    for item, value, sigma in _predictions(
        network, model.config, dataset, indices, device
    ):
        snr = item["images"][2] / _noise_r(item)
        for name in properties:
            t, o = names.index(name), model.property_names.index(name)
            select = _valid(item, t, name) & (snr > snr_min) & (sigma[o] > 0)
            ratios[name].append(
                np.abs(value[o][select] - item["truth"][t][select]) / sigma[o][select]
            )
    scales = {}
    for name in properties:
        ratio = np.concatenate(ratios[name]) if ratios[name] else np.zeros(0)
        if ratio.size < 100:
            continue
        p68, p95 = np.percentile(ratio, [68.27, 95.0])
        scales[name] = round(float(p68), 4)
        network.heads[name].sigma_scale = scales[name]
        spec = model.config.properties[name]
        spec["sigma_scale"] = scales[name]
        spec["interval_95"] = round(float(p95 / max(p68, 1e-12)), 4)
    for name in model.property_names:
        network.heads[name].sigma_scale = float(
            model.config.properties[name].get("sigma_scale", 1.0)
        )
    return scales


def evaluate(
    model,
    dataset,
    *,
    indices=None,
    baseline_dataset=None,
    baseline_indices=None,
    device="auto",
    snr_min=3.0,
    out_dir=None,
    progress=False,
):
    """Evaluate a model on galaxies of a dataset.

    Parameters
    ----------
    model : `~picasso_astro.hub.PicassoModel` or str or `~pathlib.Path`
        A model or a model directory.
    dataset : `torch.utils.data.Dataset`
        Items as for training (see
        `~picasso_astro.training._data.normalize_item`).
    indices : sequence of int, optional
        The test galaxies (all by default).
    baseline_dataset : `torch.utils.data.Dataset`, optional
        Where the colour-M/L baseline is fitted (default ``dataset``).
    baseline_indices : sequence of int, optional
        Its training galaxies (default: all of ``baseline_dataset``; when that
        is ``dataset`` too, pass the training indices so that the baseline is
        not fitted on the test galaxies).
    device : str
        ``"auto"``, ``"cpu"`` or ``"cuda"``.
    snr_min : float
        Pixels enter the pixel metrics when their r-band S/N exceeds this.
    out_dir : str or `~pathlib.Path`, optional
        Write ``evaluation.json``, ``residual_vs_radius.png`` and
        ``predicted_vs_true.png`` there.
    progress : bool
        Show a progress bar.

    Returns
    -------
    metrics : dict
        ``{"properties": {name: {"pixel", "integrated", "calibration",
        "profile"}}, "baseline": ..., ...}`` (JSON-ready; None where undefined).
    """
    from tqdm.auto import tqdm

    from ..hub import load_model

    model = load_model(model)
    device = resolve_device(device)
    network = model.network.to(device).eval()
    config = model.config
    names = dataset_property_names(dataset)
    properties = [n for n in model.property_names if n in names]
    if not properties:
        msg = (
            f"the dataset has truth for {', '.join(names)}, none of which the model "
            f"predicts ({', '.join(model.property_names)})"
        )
        raise PicassoInputError(msg)
    out_planes = [model.property_names.index(n) for n in properties]
    truth_planes = [names.index(n) for n in properties]
    indices = list(range(len(dataset)) if indices is None else indices)
    if not indices:
        msg = "no galaxies to evaluate"
        raise PicassoInputError(msg)

    baseline = None
    if "stellar_mass" in properties and (
        baseline_dataset is not None
        or _any_valid(dataset, baseline_indices or indices, "stellar_mass")
    ):
        baseline_data = dataset if baseline_dataset is None else baseline_dataset
        coefficients = fit_colour_ml_baseline(
            baseline_data,
            indices=baseline_indices,
            pixel_scale=config.pixel_scale,
            snr_min=snr_min,
        )
        baseline = {"coefficients": coefficients, "residual": [], "model": []}

    acc = {
        n: {
            "res": [],
            "sigma": [],
            "rrel": [],
            "truth": [],
            "integrated": [],
            "peak": [],
            "worst": [],
        }
        for n in properties
    }
    subsets = {name: [] for name in SUBSETS}
    rng = np.random.default_rng(0)
    predictions = _predictions(network, config, dataset, indices, device)
    for item, value, sigma in tqdm(
        predictions, total=len(indices), disable=not progress, desc="evaluate"
    ):
        snr = item["images"][2] / _noise_r(item)
        if item.get("r_half_pix") is not None:
            r_half = float(np.asarray(item["r_half_pix"]))
            centre = ((snr.shape[0] - 1) / 2, (snr.shape[1] - 1) / 2)
        elif "stellar_mass" in names:
            plane = names.index("stellar_mass")
            mass = np.where(
                _valid(item, plane, "stellar_mass"),
                10.0 ** item["truth"][plane].astype(float),
                0.0,
            )
            centre, r_half = half_mass_radius(mass)
        else:
            centre, r_half = half_mass_radius(item["images"][2], item["mask"])
        yy, xx = np.indices(snr.shape)
        rrel = np.hypot(yy - centre[0], xx - centre[1]) / r_half
        aperture = (rrel <= 2) & ~item["mask"]
        for subset, member in galaxy_subsets(item).items():
            subsets[subset].append(member)
        for name, o, t in zip(properties, out_planes, truth_planes, strict=True):
            truth = item["truth"][t]
            valid = _valid(item, t, name)
            select = valid & (snr > snr_min)
            a = acc[name]
            a["res"].append(value[o][select] - truth[select])
            a["sigma"].append(sigma[o][select])
            a["rrel"].append(rrel[select])
            a["truth"].append(truth[select])
            a["integrated"].append(
                _integrated_residual(name, value[o], truth, valid, aperture)
            )
            a["peak"].append(_peak_residual(value[o], truth, valid & aperture))
            worst = select & aperture
            a["worst"].append(
                float(np.min(value[o][worst] - truth[worst])) if worst.any() else np.nan
            )
            if baseline is not None and name == "stellar_mass":
                ok, colour, mu_i = _colour_features(item["images"], config.pixel_scale)
                same = select & ok
                a_, b_, c_ = baseline["coefficients"]
                predicted = a_ + b_ * colour[same] + c_ * mu_i[same]
                baseline["residual"].append(predicted - truth[same])
                baseline["model"].append(value[o][same] - truth[same])

    metrics = {
        "model": config.name,
        "revision": config.revision,
        "n_galaxies": len(indices),
        "selection": (
            f"unmasked pixels with valid truth and r-band S/N > {snr_min:g}; "
            "integrated within 2 half-mass radii"
        ),
        "properties": {},
    }
    samples = {}
    widths_95 = model.config.intervals_95()
    for name in properties:
        a = acc[name]
        res = np.concatenate(a["res"])
        sig = np.concatenate(a["sigma"])
        rrel = np.concatenate(a["rrel"])
        truth = np.concatenate(a["truth"])
        every = np.asarray(a["integrated"], dtype=float)
        integrated = every[np.isfinite(every)]
        profile = {"r_over_rhalf_edges": [float(e) for e in RADIUS_BINS[:-1]]}
        profile.update(n=[], bias=[], rms=[])
        for lo, hi in pairwise(RADIUS_BINS):
            s = _stats(res[(rrel >= lo) & (rrel < hi)])
            profile["n"].append(s["n"])
            profile["bias"].append(s["bias"])
            profile["rms"].append(s["rms"])
        z95 = widths_95[name]
        calibration = {
            "coverage_68": None,
            "coverage_95": None,
            "median_sigma": None,
            "interval_95": z95,
        }
        if res.size:
            calibration.update(
                coverage_68=float(np.mean(np.abs(res) <= sig)),
                coverage_95=float(np.mean(np.abs(res) <= z95 * sig)),
                median_sigma=float(np.median(sig)),
            )
        integ = {"n": int(integrated.size), "scatter": None, "bias": None}
        if integrated.size:
            p16, p84 = np.percentile(integrated, [16, 84])
            integ.update(
                scatter=float(np.std(integrated)),
                bias=float(np.mean(integrated)),
                scatter_robust=float((p84 - p16) / 2),
            )
        metrics["properties"][name] = {
            "pixel": _stats(res),
            "integrated": integ,
            "calibration": calibration,
            "profile": profile,
            "decile_bias": _decile_bias(truth, res),
            "peak": _stats(_finite(a["peak"])),
            "worst_pixel": {
                subset: _worst_pixels(np.asarray(a["worst"])[np.asarray(member, bool)])
                for subset, member in subsets.items()
                if subset in ("all", "bright_centre")
            },
            "subsets": {
                subset: _integrated_stats(every[np.asarray(member, bool)])
                for subset, member in subsets.items()
            },
        }
        keep = rng.permutation(res.size)[:20_000]
        samples[name] = {"truth": truth[keep], "predicted": truth[keep] + res[keep]}
    if baseline is not None:
        base = _stats(np.concatenate(baseline["residual"]))
        same_model = _stats(np.concatenate(baseline["model"]))
        metrics["baseline"] = {
            "relation": "log Sigma* = a + b (g - i) + c mu_i",
            "coefficients": [float(c) for c in baseline["coefficients"]],
            "n": base["n"],
            "rms": base["rms"],
            "bias": base["bias"],
            "model_rms": same_model["rms"],
            "model_bias": same_model["bias"],
        }
    if out_dir is not None:
        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / "evaluation.json").write_text(json.dumps(metrics, indent=2) + "\n")
        plot_metrics(metrics, out_dir, samples=samples)
    return metrics


def format_table(metrics):
    """Return the metrics as a plain-text table.

    Parameters
    ----------
    metrics : dict
        As returned by `evaluate`.

    Returns
    -------
    text : str
    """

    def fmt(value, spec="7.3f"):
        return f"{'-':>7}" if value is None else format(value, spec)

    lines = [
        f"{'property':<20} {'pix RMS':>7} {'pix bias':>8} {'int sc':>7} "
        f"{'int bias':>8} {'in 68%':>7} {'in 95%':>7} {'pixels':>9}"
    ]
    for name, m in metrics["properties"].items():
        lines.append(
            f"{name:<20} {fmt(m['pixel']['rms'])} {fmt(m['pixel']['bias'], '8.3f')} "
            f"{fmt(m['integrated']['scatter'])} {fmt(m['integrated']['bias'], '8.3f')} "
            f"{fmt(m['calibration']['coverage_68'], '7.2f')} "
            f"{fmt(m['calibration']['coverage_95'], '7.2f')} {m['pixel']['n']:>9d}"
        )
    base = metrics.get("baseline")
    if base and base["rms"] is not None:
        lines.append(
            f"colour-M/L baseline (stellar_mass, {base['n']} pixels): RMS "
            f"{base['rms']:.3f} bias {base['bias']:+.3f} dex; network on the same "
            f"pixels: RMS {base['model_rms']:.3f} bias {base['model_bias']:+.3f} dex"
        )
    lines.append(f"({metrics['n_galaxies']} galaxies; {metrics['selection']})")
    lines.append("")
    lines.append(
        f"{'property':<20} {'top-dec':>7} {'peak':>7} {'worst<-1':>8} "
        + " ".join(f"{s[:13]:>13}" for s in SUBSETS[1:])
    )
    for name, m in metrics["properties"].items():
        deciles = m.get("decile_bias") or [None]
        bright = m.get("worst_pixel", {}).get("bright_centre", {})
        cells = []
        for subset in SUBSETS[1:]:
            row = m.get("subsets", {}).get(subset, {})
            text = "-"
            if row.get("n"):
                text = f"{row['scatter']:.2f}/{row['bias']:+.2f} ({row['n']})"
            cells.append(f"{text:>13}")
        lines.append(
            f"{name:<20} {fmt(deciles[-1])} {fmt(m.get('peak', {}).get('bias'))} "
            f"{fmt(bright.get('fraction_below_1dex'), '8.2f')} " + " ".join(cells)
        )
    lines.append(
        "(top-dec: bias in the top decile of true pixel values; peak: bias of "
        "3x3 means at the true peak; worst<-1: fraction of bright-centred "
        "galaxies with a pixel more than 1 dex below truth; subsets: integrated "
        "scatter/bias (n))"
    )
    return "\n".join(lines)


def plot_metrics(metrics, out_dir, *, samples=None):
    """Write ``residual_vs_radius.png`` (and ``predicted_vs_true.png``).

    Parameters
    ----------
    metrics : dict
        As returned by `evaluate`.
    out_dir : str or `~pathlib.Path`
    samples : dict, optional
        ``{name: {"truth": array, "predicted": array}}`` for the scatter plots.

    Returns
    -------
    paths : list of `~pathlib.Path`
    """
    from matplotlib.figure import Figure

    out_dir = Path(out_dir)
    names = list(metrics["properties"])
    paths = []
    fig = Figure(figsize=(6, 4), layout="constrained")
    ax = fig.add_subplot()
    for name in names:
        profile = metrics["properties"][name]["profile"]
        edges = np.array([*profile["r_over_rhalf_edges"], 6.0])
        centres = 0.5 * (edges[:-1] + edges[1:])
        bias = np.array([np.nan if b is None else b for b in profile["bias"]])
        rms = np.array([np.nan if r is None else r for r in profile["rms"]])
        (line,) = ax.plot(centres, bias, marker="o", label=name)
        ax.plot(centres, rms, ls="--", color=line.get_color())
    ax.axhline(0, color="k", lw=0.5)
    ax.set_xlabel("radius / half-mass radius")
    ax.set_ylabel("residual (dex): bias (solid), RMS (dashed)")
    ax.legend(fontsize="small")
    path = out_dir / "residual_vs_radius.png"
    fig.savefig(path, dpi=100)
    paths.append(path)
    if samples:
        fig = Figure(figsize=(3.2 * len(samples), 3.2), layout="constrained")
        axes = fig.subplots(1, len(samples), squeeze=False)[0]
        for ax, (name, s) in zip(axes, samples.items(), strict=True):
            edges = PROPERTIES[name].edges
            ax.set_title(name, fontsize="small")
            if not len(s["truth"]):
                continue
            ax.hist2d(
                s["truth"], s["predicted"], bins=60, range=[edges[[0, -1]]] * 2, cmin=1
            )
            ax.plot(edges[[0, -1]], edges[[0, -1]], color="k", lw=0.5)
            ax.set_xlabel("true (log10)")
            ax.set_ylabel("predicted (log10)")
        path = out_dir / "predicted_vs_true.png"
        fig.savefig(path, dpi=100)
        paths.append(path)
    return paths
