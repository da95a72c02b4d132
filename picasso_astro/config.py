"""The configuration that travels with a model's weights (``config.json``).

It holds everything needed to rebuild the network and to feed it correctly:
architecture, bands, pixel scale, input scaling, cutout convention, the
properties with their bin edges, and provenance.
"""

import copy
from dataclasses import dataclass, field
from itertools import pairwise

from ._options import LEGACY_PREPARATION
from .exceptions import PicassoInputError, PicassoModelError
from .images import BANDS, PIXEL_SCALE
from .preprocess import DEFAULT_SOFTENING, PreparationOptions
from .properties import PROPERTIES, Z95

__all__ = [
    "CONFIG_FORMAT_VERSION",
    "ModelConfig",
]

#: Version of the ``config.json`` layout that this package writes and reads.
CONFIG_FORMAT_VERSION = 1


def _default_properties():
    return {
        name: {"bin_edges": list(PROPERTIES[name].bin_edges)}
        for name in (
            "sfr",
            "hi",
            "gas_metallicity",
            "stellar_metallicity",
            "stellar_mass",
        )
    }


@dataclass
class ModelConfig:
    """Everything about a model except its weights.

    Parameters
    ----------
    properties : dict
        Property name to ``{"bin_edges": [...]}``, in output order, with an
        optional ``"sigma_scale"``: the factor on the predicted uncertainty
        fitted on validation galaxies so that 1 sigma is a 68 % interval, and
        ``"interval_95"``: how many of those sigmas a 95 % interval spans
        (`Z95`, the Gaussian's, when not fitted; see
        `~picasso_astro.training.evaluate.calibrate_uncertainty`).
    width, depth, groups : int
        U-Net architecture (see `~picasso_astro.model.PicassoUNet`).
    norm, upsample : str
        Normalisation and decoder up-sampling of the U-Net. New models are
        local (``"batch"``, ``"bilinear"``); a ``config.json`` without them is
        of a model 0.1 (``"group"``, ``"transpose"``).
    bands : list of str
        Input bands in channel order.
    pixel_scale : float
        Arcsec per pixel of the images the model was trained on.
    softening : dict of str to float
        asinh softening per band in nanomaggies.
    cutout : dict
        How inputs were cut: ``{"kind": "fixed", "size": 256}`` or
        ``{"kind": "half_light", "factor": 10.0, "min_size": 64}``.
    preprocessing : `~picasso_astro.preprocess.PreparationOptions`
        How the training images were prepared; `~picasso_astro.predict`
        prepares galaxies the same way unless told otherwise. A
        ``config.json`` without this block is of a model trained on mocks
        stacked as they came (no background, PSF matching or masking).
    input_range : dict
        What the training images held, e.g. ``{"r_max_nmgy": 6.1}`` (the
        r-band surface brightness per pixel that few training galaxies
        exceeded); pixels beyond it are flagged ``OUT_OF_RANGE`` in the maps.
        Empty when unknown.
    name, revision : str
        Model name and version, copied into every output's provenance.
    provenance : dict
        Training data, recipe, package version, date and metrics.
    """

    properties: dict = field(default_factory=_default_properties)
    width: int = 32
    depth: int = 4
    groups: int = 8
    norm: str = "batch"
    upsample: str = "bilinear"
    bands: list = field(default_factory=lambda: list(BANDS))
    pixel_scale: float = PIXEL_SCALE
    softening: dict = field(default_factory=lambda: dict(DEFAULT_SOFTENING))
    cutout: dict = field(default_factory=lambda: {"kind": "fixed", "size": 256})
    preprocessing: PreparationOptions = field(default_factory=PreparationOptions)
    input_range: dict = field(default_factory=dict)
    name: str = "unnamed"
    revision: str = "local"
    provenance: dict = field(default_factory=dict)

    @property
    def in_channels(self):
        """int: the bands plus one validity channel."""
        return len(self.bands) + 1

    @property
    def property_names(self):
        """Tuple of str: output properties in order."""
        return tuple(self.properties)

    def intervals_95(self):
        """Return ``{property: sigmas}``: the half-width of each 95 % interval."""
        return {
            name: float(spec.get("interval_95", Z95))
            for name, spec in self.properties.items()
        }

    def to_dict(self):
        """Return the JSON-ready dictionary written as ``config.json``."""
        return {
            "format_version": CONFIG_FORMAT_VERSION,
            "name": self.name,
            "revision": self.revision,
            "architecture": {
                "type": "PicassoUNet",
                "in_channels": self.in_channels,
                "width": self.width,
                "depth": self.depth,
                "groups": self.groups,
                "norm": self.norm,
                "upsample": self.upsample,
            },
            "bands": list(self.bands),
            "pixel_scale": self.pixel_scale,
            "input_scaling": {
                "kind": "asinh",
                "softening": dict(self.softening),
                "validity_channel": True,
            },
            "cutout": dict(self.cutout),
            "preprocessing": self.preprocessing.recorded(),
            "input_range": dict(self.input_range),
            "properties": copy.deepcopy(self.properties),
            "provenance": copy.deepcopy(self.provenance),
        }

    @classmethod
    def from_dict(cls, config, *, source="config.json"):
        """Build and validate a configuration from its dictionary.

        Parameters
        ----------
        config : dict
            As read from ``config.json``.
        source : str
            Where it came from, for error messages.

        Raises
        ------
        PicassoModelError
            If a field is missing, of the wrong type, or not supported.
        """

        def fail(problem, remedy=None):
            remedy = remedy or (
                f"this is not a valid picasso_astro configuration: fix {source} "
                "or download or export the model again"
            )
            msg = f"{source}: {problem}; {remedy}"
            raise PicassoModelError(msg)

        if not isinstance(config, dict):
            kind = type(config).__name__
            fail(f"the model configuration must be a JSON object, not {kind}")
        version = config.get("format_version")
        if version != CONFIG_FORMAT_VERSION:
            fail(
                f"format_version is {version!r}, this version of picasso_astro reads "
                f"{CONFIG_FORMAT_VERSION}",
                "upgrade picasso_astro or re-export the model",
            )
        try:
            arch = config["architecture"]
            bands = list(config["bands"])
            scaling = config["input_scaling"]
            properties = config["properties"]
            pixel_scale = float(config["pixel_scale"])
        except (KeyError, TypeError, ValueError) as exc:
            fail(f"missing or malformed field {exc}")
        if arch.get("type") != "PicassoUNet":
            fail(f"unknown architecture type {arch.get('type')!r}")
        if bands != list(BANDS):
            fail(f"bands must be {list(BANDS)}, not {bands}")
        if arch.get("in_channels") != len(bands) + 1:
            fail("architecture.in_channels must be the number of bands plus one")
        norm = arch.get("norm", "group")
        upsample = arch.get("upsample", "transpose")
        if norm not in ("batch", "group") or upsample not in ("bilinear", "transpose"):
            fail(
                f"architecture norm {norm!r} or upsample {upsample!r} unknown; "
                "norm is 'batch' or 'group', upsample 'bilinear' or 'transpose'"
            )
        if scaling.get("kind") != "asinh" or not scaling.get("validity_channel"):
            fail(f"unsupported input_scaling {scaling!r}")
        softening = scaling.get("softening", {})
        if set(softening) != set(bands):
            fail("input_scaling.softening needs one value per band")
        if not properties:
            fail("no properties")
        for name, spec in properties.items():
            if name not in PROPERTIES:
                fail(f"unknown property {name!r}; known: {', '.join(PROPERTIES)}")
            edges = spec.get("bin_edges") if isinstance(spec, dict) else None
            if (
                not isinstance(edges, list)
                or len(edges) < 2
                or any(b <= a for a, b in pairwise(edges))
            ):
                fail(f"property {name!r} needs increasing bin_edges")
            scale = spec.get("sigma_scale", 1.0)
            if not _positive_number(scale):
                fail(f"property {name!r}: sigma_scale must be a positive number")
            if not _positive_number(spec.get("interval_95", Z95)):
                fail(
                    f"property {name!r}: interval_95 must be a positive number "
                    "of sigmas"
                )
        preprocessing = _recorded_preparation(config, fail)
        input_range = _input_range(config, fail)
        try:
            return cls(
                properties=copy.deepcopy(properties),
                width=int(arch["width"]),
                depth=int(arch["depth"]),
                groups=int(arch.get("groups", 8)),
                norm=norm,
                upsample=upsample,
                bands=bands,
                pixel_scale=pixel_scale,
                softening={b: float(v) for b, v in softening.items()},
                cutout=dict(config.get("cutout", {"kind": "fixed", "size": 256})),
                preprocessing=preprocessing,
                input_range=input_range,
                name=str(config.get("name", "unnamed")),
                revision=str(config.get("revision", "local")),
                provenance=copy.deepcopy(config.get("provenance", {})),
            )
        except (KeyError, TypeError, ValueError) as exc:
            fail(f"malformed architecture: {exc}")

    def build_network(self):
        """Return a freshly initialised `~picasso_astro.model.PicassoUNet`."""
        from .model import PicassoUNet

        network = PicassoUNet(
            self.in_channels,
            {name: spec["bin_edges"] for name, spec in self.properties.items()},
            width=self.width,
            depth=self.depth,
            groups=self.groups,
            norm=self.norm,
            upsample=self.upsample,
        )
        for name, spec in self.properties.items():
            network.heads[name].sigma_scale = float(spec.get("sigma_scale", 1.0))
        return network


def _positive_number(value):
    return (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and 0 < value < 100
    )


def _recorded_preparation(config, fail):
    if "preprocessing" not in config:
        return LEGACY_PREPARATION
    block = config["preprocessing"]
    names = PreparationOptions.RECORDED + PreparationOptions.RECORDED_IF_SET
    if not isinstance(block, dict) or set(block) - set(names):
        fail(
            f"preprocessing must be an object with some of {', '.join(names)}, "
            f"not {block!r}"
        )
    try:
        # Options not recorded keep the values of the models made before.
        return LEGACY_PREPARATION.replace(block)
    except PicassoInputError as exc:
        fail(str(exc))


def _input_range(config, fail):
    block = config.get("input_range", {})
    if not isinstance(block, dict) or set(block) - {"r_max_nmgy", "note"}:
        fail(f"input_range must be an object with r_max_nmgy (and note), not {block!r}")
    value = block.get("r_max_nmgy")
    if value is not None and not (
        isinstance(value, int | float) and not isinstance(value, bool) and value > 0
    ):
        fail(f"input_range.r_max_nmgy must be a positive number, not {value!r}")
    return dict(block)
