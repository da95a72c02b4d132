"""The quantized-regression loss and the per-pixel weights it uses."""

import numpy as np
import torch
import torch.nn.functional as F

from ..model import decode_quantized
from ..properties import PROPERTIES

__all__ = [
    "pixel_weights",
    "quantized_regression_loss",
]


def pixel_weights(
    truth, valid, mask, property_names, *, sky_weight=0.1, balance=0.0, bin_edges=None
):
    """Per-pixel loss weights of one galaxy, so that empty sky does not dominate.

    Parameters
    ----------
    truth : `~numpy.ndarray`
        ``(P, ny, nx)`` log10 truth.
    valid : `~numpy.ndarray` or None
        ``(P, ny, nx)`` bool, False where the truth is a floor or undefined; when
        None, a pixel is valid where its truth is finite and above the lowest
        bin edge of its property.
    mask : `~numpy.ndarray`
        ``(ny, nx)`` bool, True on bad pixels; these get weight 0.
    property_names : sequence of str
        Names of the ``P`` properties.
    sky_weight : float
        Total weight of the "sky" pixels (unmasked, truth not valid) of a
        surface-density property, as a fraction of the total weight of its valid
        pixels; they teach the network to predict the floor away from the galaxy.
        Invalid pixels of other properties (metallicity without gas, age without
        stars) are undefined and get weight 0.
    balance : float
        Rarity weighting: a valid pixel whose truth falls in a bin holding
        ``n_k`` of the image's ``n`` valid pixels (``m`` bins occupied) weighs
        ``(n / (m n_k))**balance``, renormalised to a mean of 1 and capped at
        `MAX_RARITY_WEIGHT`, so that the few
        pixels of a bright centre count as much as the many of the outskirts.
        0 (the default) weighs valid pixels equally.
    bin_edges : dict of str to sequence of float, optional
        The bins counted for ``balance``; each property's default bins if
        omitted.

    Returns
    -------
    weight : `~numpy.ndarray`
        ``(P, ny, nx)`` float32: 1 on valid pixels (with ``balance``, their
        rarity weights), ``sky_weight * n_valid / n_sky`` on sky pixels, 0 on
        masked and undefined pixels.
    """
    truth = np.asarray(truth, dtype=np.float32)
    good = ~np.asarray(mask, dtype=bool)
    finite = np.isfinite(truth)
    if valid is None:
        floors = np.array(
            [PROPERTIES[name].bin_edges[0] for name in property_names],
            dtype=np.float32,
        ).reshape(-1, 1, 1)
        valid = finite & (np.where(finite, truth, -np.inf) > floors)
    valid = np.asarray(valid, dtype=bool) & finite & good
    weight = valid.astype(np.float32)
    if balance > 0:
        for p, name in enumerate(property_names):
            edges = (bin_edges or {}).get(name, PROPERTIES[name].bin_edges)
            weight[p][valid[p]] = _rarity_weights(truth[p][valid[p]], edges, balance)
    for p, name in enumerate(property_names):
        if not PROPERTIES[name].surface_density or sky_weight <= 0:
            continue
        sky = good & finite[p] & ~valid[p]
        n_sky = int(sky.sum())
        if n_sky:
            per_pixel = sky_weight * max(int(valid[p].sum()), 1) / n_sky
            weight[p][sky] = per_pixel
    return weight


#: The most a pixel can weigh under ``balance``: one odd pixel in a bin of its
#: own must not dominate its galaxy.
MAX_RARITY_WEIGHT = 10.0


def _rarity_weights(values, edges, exponent):
    if values.size == 0:
        return values
    bins = np.clip(np.searchsorted(edges, values, side="right") - 1, 0, len(edges) - 2)
    counts = np.bincount(bins, minlength=len(edges) - 1)
    occupied = np.count_nonzero(counts)
    weights = (values.size / (occupied * counts[bins])) ** exponent
    weights = weights / weights.mean()
    return np.minimum(weights, MAX_RARITY_WEIGHT).astype(np.float32)


def quantized_regression_loss(
    outputs, truth, weight, bin_edges, *, residual_weight=1.0, value_weight=1.0
):
    """Quantized-regression loss of Güler et al. (2017), weighted per pixel.

    For a property with edges ``B_0 < ... < B_K`` and truth ``t`` (clipped to
    ``[B_0, B_K]``), the true bin is ``k`` with ``B_k <= t < B_{k+1}`` (the top
    edge belongs to the last bin) and the residual target is
    ``rho = (t - B_k) / (B_{k+1} - B_k)``. Per pixel::

        L = CE(softmax(bin_logits), k)
            + residual_weight * (sigmoid(residual_logits[k]) - rho)**2
            + value_weight * (value - t)**2

    where ``value`` is the decoded mixture mean in dex
    (`~picasso_astro.model.decode_quantized`), the pixel-weighted L2 of Buck &
    Wolf (2021). Each property's loss is ``sum(w L) / sum(w)`` over the batch;
    the total is their mean over properties.

    Parameters
    ----------
    outputs : dict of str to tuple of `torch.Tensor`
        ``{name: (bin_logits, residual_logits)}``, each ``(N, K, H, W)``.
    truth, weight : `torch.Tensor`
        ``(N, P, H, W)``, properties in the order of ``bin_edges``.
    bin_edges : dict of str to `torch.Tensor`
        Property name to its ``(K + 1,)`` edges, in the order of ``truth``.
    residual_weight, value_weight : float
        Weights of the residual and value terms relative to the cross-entropy.

    Returns
    -------
    total : `torch.Tensor`
        Scalar loss.
    per_property : dict of str to `torch.Tensor`
        Each property's weighted mean loss (detached).
    """
    per_property = {}
    losses = []
    for p, (name, edges) in enumerate(bin_edges.items()):
        bin_logits, residual_logits = outputs[name]
        bin_logits = bin_logits.float()
        residual_logits = residual_logits.float()
        edges = edges.to(device=bin_logits.device, dtype=torch.float32)
        n_bins = edges.numel() - 1
        w = weight[:, p].float()
        t = torch.nan_to_num(truth[:, p].float(), nan=float(edges[0]))
        t = t.clamp(edges[0], edges[-1])
        k = torch.bucketize(t, edges[1:-1].contiguous(), right=True)
        k = k.clamp(0, n_bins - 1)
        lower, upper = edges[k], edges[k + 1]
        rho = ((t - lower) / (upper - lower)).clamp(0, 1)
        ce = F.cross_entropy(bin_logits, k, reduction="none")
        r_k = torch.sigmoid(residual_logits.gather(1, k.unsqueeze(1)).squeeze(1))
        loss = ce + residual_weight * (r_k - rho) ** 2
        if value_weight:
            value, _ = decode_quantized(bin_logits, residual_logits, edges)
            loss = loss + value_weight * (value - t) ** 2
        total_weight = w.sum()
        term = (w * loss).sum() / total_weight.clamp_min(1e-12)
        losses.append(term)
        per_property[name] = term.detach()
    return torch.stack(losses).mean(), per_property
