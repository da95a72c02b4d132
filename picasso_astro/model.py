"""The PICASSO network: a U-Net with one quantized-regression head per property.

Plain `torch.nn.Module` code with no file or network I/O. The head follows
Güler et al. (2017, DenseReg): for each pixel and property it predicts softmax
weights ``q`` over the bins between log10 edges ``B`` and sigmoid residuals
``r`` in [0, 1]; the value is ``sum_i q_i (B_i + r_i (B_{i+1} - B_i))`` and the
uncertainty is the standard deviation of that mixture.
"""

import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "PicassoUNet",
    "QuantizedRegressionHead",
    "decode_quantized",
]


def _group_count(channels, max_groups):
    groups = min(max_groups, channels)
    while channels % groups:
        groups -= 1
    return groups


#: Normalisation layers: "batch" keeps statistics frozen after training, so a
#: pixel's output depends only on its neighbourhood; "group" (models 0.1) takes
#: statistics over the whole image, so the maps depend on the cutout.
NORMS = ("batch", "group")
#: Up-sampling: "bilinear" (interpolation, then a 3x3 convolution) leaves no
#: checkerboard; "transpose" (a 2x2 transposed convolution, models 0.1) does.
UPSAMPLES = ("bilinear", "transpose")


def _norm(kind, channels, groups):
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    return nn.GroupNorm(_group_count(channels, groups), channels)


class _DoubleConv(nn.Sequential):
    """Two 3x3 convolutions, each followed by a normalisation and SiLU."""

    def __init__(self, in_channels, out_channels, groups, norm="group"):
        layers = []
        for channels_in in (in_channels, out_channels):
            layers += [
                nn.Conv2d(channels_in, out_channels, 3, padding=1, bias=False),
                _norm(norm, out_channels, groups),
                nn.SiLU(inplace=True),
            ]
        super().__init__(*layers)


def _upsample(kind, in_channels, out_channels):
    if kind == "bilinear":
        return nn.Sequential(
            nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False),
            nn.Conv2d(in_channels, out_channels, 3, padding=1),
        )
    return nn.ConvTranspose2d(in_channels, out_channels, 2, stride=2)


class QuantizedRegressionHead(nn.Module):
    """Bin logits and residual logits for one property.

    Parameters
    ----------
    in_channels : int
        Channels of the decoder's last feature map.
    bin_edges : sequence of float
        Increasing log10 bin edges ``B``; the head has ``len(B) - 1`` bins.
    """

    def __init__(self, in_channels, bin_edges):
        super().__init__()
        edges = torch.as_tensor(bin_edges, dtype=torch.float32)
        if (
            edges.ndim != 1
            or edges.numel() < 2
            or not bool(torch.all(edges[1:] > edges[:-1]))
        ):
            msg = "bin_edges must be at least two strictly increasing numbers"
            raise ValueError(msg)
        self.register_buffer("bin_edges", edges)
        self.n_bins = edges.numel() - 1
        #: Factor on the mixture's standard deviation, fitted on validation
        #: galaxies so that 68 % of true values fall within 1 sigma (1: none).
        self.sigma_scale = 1.0
        self.conv = nn.Conv2d(in_channels, 2 * self.n_bins, 1)

    def forward(self, features):
        """Return ``(bin_logits, residual_logits)``, each ``(N, n_bins, H, W)``."""
        out = self.conv(features)
        return out[:, : self.n_bins], out[:, self.n_bins :]


def decode_quantized(bin_logits, residual_logits, bin_edges):
    """Turn head outputs into a value and an uncertainty per pixel.

    Parameters
    ----------
    bin_logits, residual_logits : `torch.Tensor`
        Shape ``(N, K, H, W)`` for ``K`` bins.
    bin_edges : `torch.Tensor`
        Shape ``(K + 1,)``.

    Returns
    -------
    value, sigma : `torch.Tensor`
        Shape ``(N, H, W)``: the mixture mean ``sum_i q_i v_i`` with
        ``v_i = B_i + r_i (B_{i+1} - B_i)``, and the mixture's standard deviation.
    """
    q = torch.softmax(bin_logits.float(), dim=1)
    r = torch.sigmoid(residual_logits.float())
    edges = bin_edges.float().view(1, -1, 1, 1)
    lower, width = edges[:, :-1], edges[:, 1:] - edges[:, :-1]
    centres = torch.addcmul(lower, r, width)
    value = torch.linalg.vecdot(q, centres, dim=1)
    variance = torch.linalg.vecdot(q, (centres - value.unsqueeze(1)).square(), dim=1)
    return value, variance.clamp_min(0).sqrt()


class PicassoUNet(nn.Module):
    """U-Net encoder-decoder with a quantized-regression head per property.

    Parameters
    ----------
    in_channels : int
        Input channels (five bands plus a validity channel by default).
    properties : dict of str to sequence of float
        Property name to its log10 bin edges, in output order.
    width : int
        Channels at the first level; each deeper level doubles them.
    depth : int
        Number of down-sampling steps; inputs are padded to a multiple of
        ``2**depth``.
    groups : int
        Maximum number of GroupNorm groups (``norm="group"`` only).
    norm : {"batch", "group"}
        Normalisation after each convolution (see `NORMS`). With ``"batch"``
        the network in evaluation mode is local: a pixel's output depends only
        on the input within its receptive field, not on the cutout's size or
        position (up to shifts that are multiples of `multiple`).
    upsample : {"bilinear", "transpose"}
        Decoder up-sampling (see `UPSAMPLES`).
    """

    def __init__(
        self,
        in_channels,
        properties,
        *,
        width=32,
        depth=4,
        groups=8,
        norm="group",
        upsample="transpose",
    ):
        super().__init__()
        if depth < 1 or width < 1 or in_channels < 1:
            msg = "in_channels, width and depth must all be positive"
            raise ValueError(msg)
        if norm not in NORMS or upsample not in UPSAMPLES:
            msg = f"norm must be one of {NORMS} and upsample one of {UPSAMPLES}"
            raise ValueError(msg)
        self.norm = norm
        self.upsample_kind = upsample
        if not properties:
            msg = "a model needs at least one property"
            raise ValueError(msg)
        self.in_channels = in_channels
        self.depth = depth
        self.property_names = tuple(properties)
        widths = [width * 2**level for level in range(depth + 1)]
        self.encoder = nn.ModuleList()
        channels = in_channels
        for w in widths:
            self.encoder.append(_DoubleConv(channels, w, groups, norm))
            channels = w
        self.upsample = nn.ModuleList()
        self.decoder = nn.ModuleList()
        for w in reversed(widths[:-1]):
            self.upsample.append(_upsample(upsample, channels, w))
            self.decoder.append(_DoubleConv(2 * w, w, groups, norm))
            channels = w
        self.heads = nn.ModuleDict(
            {
                name: QuantizedRegressionHead(channels, edges)
                for name, edges in properties.items()
            }
        )

    @property
    def multiple(self):
        """int: input sizes must be a multiple of this (``2**depth``)."""
        return 2**self.depth

    def forward(self, x):
        """Return ``{property: (bin_logits, residual_logits)}``.

        ``x`` has shape ``(N, in_channels, H, W)`` with ``H`` and ``W`` multiples of
        `multiple`; use `predict` for inputs of any size.
        """
        x = self.features(x)
        return {name: head(x) for name, head in self.heads.items()}

    def features(self, x):
        """Return the decoder's last feature map, the input of the heads."""
        skips = []
        for level, block in enumerate(self.encoder):
            if level:
                x = F.max_pool2d(x, 2)
            x = block(x)
            skips.append(x)
        for up, block, skip in zip(
            self.upsample, self.decoder, reversed(skips[:-1]), strict=True
        ):
            x = block(torch.cat([up(x), skip], dim=1))
        return x

    def predict(self, x):
        """Values and uncertainties for inputs of any size.

        Parameters
        ----------
        x : `torch.Tensor`
            Shape ``(N, in_channels, H, W)``; padded by reflection to a multiple of
            `multiple` and cropped back.

        Returns
        -------
        value, sigma : `torch.Tensor`
            Shape ``(N, n_properties, H, W)``, in `property_names` order.
        """
        height, width = x.shape[-2:]
        pad_y = -height % self.multiple
        pad_x = -width % self.multiple
        if pad_y or pad_x:
            mode = "reflect" if pad_y < height and pad_x < width else "replicate"
            x = F.pad(x, (0, pad_x, 0, pad_y), mode=mode)
        features = self.features(x)
        n = features.shape[0]
        values = features.new_empty(
            (n, len(self.property_names), height, width), dtype=torch.float32
        )
        sigmas = torch.empty_like(values)
        # On CPU, decoding one galaxy at a time keeps the per-bin arrays in cache
        # (2x faster predict at 256 x 256 in batches of 8).
        step = 1 if features.device.type == "cpu" else n
        # The heads and the decoding run in float32, also under autocast.
        with torch.autocast(features.device.type, enabled=False):
            features = features.float()
            for start in range(0, n, step):
                chunk = features[start : start + step]
                for index, name in enumerate(self.property_names):
                    head = self.heads[name]
                    bin_logits, residual_logits = head(chunk)
                    value, sigma = decode_quantized(
                        bin_logits.contiguous(),
                        residual_logits.contiguous(),
                        head.bin_edges,
                    )
                    sigma = sigma * head.sigma_scale
                    values[start : start + step, index] = value[..., :height, :width]
                    sigmas[start : start + step, index] = sigma[..., :height, :width]
        return values, sigmas
