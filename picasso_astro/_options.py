"""The preparation options: one typed object, validated where it comes in."""

import dataclasses
import math
from numbers import Real

import astropy.units as u

from .exceptions import PicassoInputError
from .images import BANDS

__all__ = ["LEGACY_PREPARATION", "PreparationOptions"]


@dataclasses.dataclass(frozen=True)
class PreparationOptions:
    """How `~picasso_astro.preprocess.prepare_target` prepares a galaxy.

    Parameters
    ----------
    background : bool
        Subtract the residual background (`photutils.background.Background2D`).
    match_psf : bool
        Convolve every band to the broadest band's PSF.
    mask_sources : bool
        Mask stars and neighbours in the network's input.
    psf_fwhm : float, dict or `~astropy.units.Quantity`, optional
        PSF FWHM in arcsec (one value, or one per band) for images where
        neither a psField, an attached PSF nor enough stars give it.
    pad : int
        Extra frame pixels on each side of a cutout for the background, PSF
        matching and ``context`` (frames only).
    context : int
        Frame pixels on each side of a cutout that the network also sees
        (frames only; at most about ``pad - 30``); the maps are cut back to
        the cutout. Its window starts on the frame's pixel lattice of the
        network's down-sampling, so that a pixel's map depends on the frame
        around it, not on where the cutout ends. A model trained on windows
        at varied offsets records the context it is meant to be used with
        (the bundled model: 32); 0: the cutout alone (see the preprocessing
        guide).
    reference_band : str
        The band whose pixel grid the others are put on.
    isophote : float
        Surface brightness in the reference band, mag per square arcsec, down
        to which the target's footprint reaches (the maps' sky bit outside).
    cutout : int, `~astropy.units.Quantity` or dict, optional
        Cutout size for galaxies in frames, instead of the model's own
        convention: pixels, an angle, ``{"kind": "fixed", "size": N}`` or
        ``{"kind": "half_light", "factor": F, "min_size": M}`` (each target then
        needs a half-light radius). The network takes any size, but a galaxy
        that fills a cutout differently from the training images is outside
        what the model has seen.
    """

    background: bool = True
    match_psf: bool = True
    mask_sources: bool = True
    psf_fwhm: object = None
    pad: int = 64
    context: int = 0
    reference_band: str = "r"
    isophote: float = 25.0
    cutout: object = None

    #: The options that change what the network sees, recorded with a model.
    RECORDED = ("background", "match_psf", "mask_sources", "reference_band")
    #: Recorded too where a model sets them (not 0): how much frame around a
    #: cutout the network was trained to see.
    RECORDED_IF_SET = ("context",)

    @classmethod
    def names(cls):
        """Return the option names, in order."""
        return tuple(f.name for f in dataclasses.fields(cls))

    @classmethod
    def check(cls, options, *, source="preprocessing"):
        """Validate a mapping of options and return it as a plain dict.

        Parameters
        ----------
        options : dict, `PreparationOptions` or None
        source : str
            Where the options came from, for messages.

        Returns
        -------
        options : dict
            Only the keys given, with values normalised (``psf_fwhm`` in arcsec).

        Raises
        ------
        PicassoInputError
            Naming an unknown key (and the valid ones) or a bad value.
        """
        if options is None:
            return {}
        if isinstance(options, PreparationOptions):
            return dataclasses.asdict(options)
        if not isinstance(options, dict):
            msg = (
                f"{source} must be a dict of options ({', '.join(cls.names())}), "
                f"not {type(options).__name__}"
            )
            raise PicassoInputError(msg)
        unknown = sorted(set(options) - set(cls.names()))
        if unknown:
            msg = (
                f"{source}: unknown option(s) {', '.join(map(repr, unknown))}; "
                f"the valid ones are {', '.join(cls.names())}"
            )
            raise PicassoInputError(msg)
        checked = {}
        for key, value in options.items():
            checked[key] = _check_value(key, value, source)
        return checked

    @classmethod
    def from_dict(cls, options, *, source="preprocessing"):
        """Return the options of a mapping, defaults for the keys not given."""
        return cls(**cls.check(options, source=source))

    def replace(self, overrides):
        """Return a copy with some options changed (validated)."""
        return dataclasses.replace(self, **self.check(overrides))

    def cutout_or(self, default):
        """Return the ``cutout`` option, or ``default`` (the model's) when unset."""
        return default if self.cutout is None else self.cutout

    def recorded(self):
        """Return the options that a model records as a dict.

        Those of `RECORDED`, and those of `RECORDED_IF_SET` that are not 0.
        """
        recorded = {key: getattr(self, key) for key in self.RECORDED}
        for key in self.RECORDED_IF_SET:
            if getattr(self, key):
                recorded[key] = getattr(self, key)
        return recorded

    def to_dict(self):
        """Return every option as a JSON-ready dict."""
        return dataclasses.asdict(self)

    def differences(self, other):
        """Return ``{key: (mine, theirs)}`` for the recorded options that differ."""
        return {
            key: (getattr(self, key), getattr(other, key))
            for key in self.RECORDED + self.RECORDED_IF_SET
            if getattr(self, key) != getattr(other, key)
        }


#: What the models trained before ``config.json`` recorded it were trained on:
#: mocks stacked as they came, no background, PSF matching or source masking.
LEGACY_PREPARATION = PreparationOptions(
    background=False, match_psf=False, mask_sources=False
)


def _check_value(key, value, source):
    def fail(expected):
        msg = f"{source}: {key} must be {expected}, not {value!r}"
        raise PicassoInputError(msg)

    if key in ("background", "match_psf", "mask_sources"):
        if not isinstance(value, bool):
            fail("True or False")
        return value
    if key in ("pad", "context"):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            fail("a non-negative number of pixels")
        return value
    if key == "reference_band":
        if value not in BANDS:
            fail(f"one of {', '.join(BANDS)}")
        return value
    if key == "isophote":
        if (
            isinstance(value, bool)
            or not isinstance(value, Real)
            or not 15.0 <= float(value) <= 32.0
        ):
            fail("a surface brightness between 15 and 32 mag per square arcsec")
        return float(value)
    if key == "cutout":
        return _check_cutout(value, source)
    # psf_fwhm
    if value is None:
        return None
    if isinstance(value, dict):
        bad = sorted(set(value) - set(BANDS))
        if bad:
            fail(f"a FWHM or a dict {{band: FWHM}} with bands among {''.join(BANDS)}")
        return {band: _fwhm_arcsec(v, key, source) for band, v in value.items()}
    return _fwhm_arcsec(value, key, source)


def _fwhm_arcsec(value, key, source):
    if isinstance(value, u.Quantity):
        try:
            value = value.to_value(u.arcsec)
        except u.UnitConversionError:
            msg = f"{source}: {key} must be an angle (e.g. 1.4 * u.arcsec), not {value}"
            raise PicassoInputError(msg) from None
    if isinstance(value, bool) or not isinstance(value, Real):
        msg = f"{source}: {key} must be a FWHM in arcsec, not {value!r}"
        raise PicassoInputError(msg)
    value = float(value)
    if not (math.isfinite(value) and value > 0):
        msg = f"{source}: {key} must be a positive FWHM in arcsec, not {value!r}"
        raise PicassoInputError(msg)
    return value


def _check_cutout(value, source):
    """Check a cutout-size convention's shape (its numbers are used later)."""
    if value is None:
        return None
    expected = (
        "a number of pixels, an angle, {'kind': 'fixed', 'size': N} or "
        "{'kind': 'half_light', 'factor': F, 'min_size': M}"
    )
    if isinstance(value, u.Quantity):
        if value.unit.physical_type != "angle" or not value.isscalar:
            msg = f"{source}: cutout must be {expected}, not {value}"
            raise PicassoInputError(msg)
        return value
    if isinstance(value, int) and not isinstance(value, bool) and value >= 8:
        return {"kind": "fixed", "size": value}
    if isinstance(value, dict):
        kind = value.get("kind")
        numbers = {"fixed": ("size",), "half_light": ("factor",)}.get(kind)
        if numbers and all(
            isinstance(value.get(key), Real) and value[key] > 0 for key in numbers
        ):
            return dict(value)
    msg = f"{source}: cutout must be {expected}, not {value!r}"
    raise PicassoInputError(msg)
