"""The public `predict`: from images to `~picasso_astro.maps.PropertyMaps`."""

import contextlib
import warnings

from . import _inference
from ._inference import DEFAULT_TILE_SIZE
from ._outputs import progress_bar
from ._run import start_run
from ._warnings import quiet_preparation
from ._warnings_target import warning_category

__all__ = ["predict"]

#: Names this module used to export, now in `picasso_astro._inference`.
_MOVED = {"resolve_device", "run_network"}


def __getattr__(name):
    if name in _MOVED:
        msg = (
            f"picasso_astro.predict.{name} is deprecated and will be removed; "
            "it is internal machinery now (picasso_astro._inference)"
        )
        warnings.warn(msg, DeprecationWarning, stacklevel=2)
        return getattr(_inference, name)
    msg = f"module {__name__!r} has no attribute {name!r}"
    raise AttributeError(msg)


def predict(
    inputs,
    *,
    targets=None,
    model=None,
    device="auto",
    batch_size="auto",
    on_error="raise",
    progress=None,
    tile_size=DEFAULT_TILE_SIZE,
    preprocessing=None,
    client=None,
):
    """Predict resolved property maps for one or more galaxies.

    Parameters
    ----------
    inputs : str, `~pathlib.Path`, HDUList, NDData, dict or list
        Five single-band FITS cutouts (band from the FILTER/BAND keyword or the
        file name, any order; files of several galaxies are grouped by name),
        five-plane cubes (file, HDUList or NDData/CCDData in u, g, r, i, z
        order), or dicts ``{band: file, HDU or NDData}``. Bands on different
        grids are reprojected onto the r-band grid. Images must be in
        nanomaggies, or in counts with an ``NMGY`` keyword. With ``targets``:
        whole SDSS corrected frames (a directory, a list of
        ``frame-*.fits[.bz2]`` files, or the dict of
        `~picasso_astro.sdss.find_frames`).
    targets : `~astropy.coordinates.SkyCoord`, `~astropy.table.Table` or str, optional
        Galaxy positions in the frames (a table, or a catalogue file, needs
        ``ra`` and ``dec`` in degrees and may have ``name`` and
        ``half_light_radius`` in arcsec; unnamed galaxies are called
        ``J<ra><dec>``, e.g. ``J200.50993+36.73092``). Each
        galaxy is cut out at the model's cutout size and prepared
        (`~picasso_astro.preprocess.prepare_target`). Galaxies are taken
        field by field: each frame is decompressed once.
    model : str, `~pathlib.Path` or `~picasso_astro.hub.PicassoModel`, optional
        A model directory or a loaded model; the bundled default if omitted.
    device : str
        ``"auto"``, ``"cpu"`` or ``"cuda"`` (on each Dask worker with ``client``).
    batch_size : int or "auto"
        Galaxies of the same size run through the network together. ``"auto"``
        chooses from the free memory (GPU memory on CUDA, available RAM on CPU)
        and the image size, up to 64.
    on_error : {"raise", "skip"}
        What to do with a galaxy whose input is unusable: raise, or warn and put
        None in its place.
    progress : bool or None
        Show a progress bar; by default when a person is watching (a terminal
        or a notebook).
    tile_size : int
        Images larger than this on a side are processed in overlapping tiles.
    preprocessing : dict or `~picasso_astro.preprocess.PreparationOptions`, optional
        Changes to how galaxies are prepared
        (`~picasso_astro.preprocess.prepare_target`), e.g. ``{"psf_fwhm": 1.4}``.
        By default each galaxy is prepared as the model's training images
        were (its ``config.json`` records how); changing a recorded step
        (``background``, ``match_psf``, ``mask_sources``, ``reference_band``)
        gives a `~picasso_astro.PicassoWarning`. An unknown option fails at
        once, naming the valid ones.
    client : `distributed.Client`, optional
        Spread the work over a Dask cluster: one task per SDSS field (or per
        group of cutouts), the model sent once to each worker; a task whose
        worker dies is run again on another.

    Returns
    -------
    maps : list of `~picasso_astro.maps.PropertyMaps` or None
        One per galaxy, in input order; None for a skipped galaxy.

    See Also
    --------
    picasso_astro.predict_to_files : for catalogues too large to keep
        in memory, writing each galaxy's file as it finishes (resumable).
    """
    if on_error not in ("raise", "skip"):
        msg = f"on_error must be 'raise' or 'skip', not {on_error!r}"
        raise ValueError(msg)
    outcomes, total = start_run(
        inputs,
        targets=targets,
        model=model,
        device=device,
        batch_size=batch_size,
        tile_size=tile_size,
        preprocessing=preprocessing,
        client=client,
    )
    results = [None] * total
    found = []
    # Closed however the loop ends, so that the preparing thread stops.
    with quiet_preparation(), contextlib.closing(outcomes):
        for outcome in progress_bar(outcomes, progress, total):
            found += outcome.warnings
            if outcome.error is None:
                results[outcome.index] = outcome.maps
            elif on_error == "raise":
                raise outcome.error
            else:
                found.append(("PicassoWarning", f"skipped: {outcome.error}"))
    # Outside the block above, so that callers' own warning filters apply.
    for category, message in found:
        warnings.warn(message, warning_category(category), stacklevel=2)
    return results
