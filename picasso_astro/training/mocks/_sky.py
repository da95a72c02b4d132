"""Real skies: render mocks into blank-sky positions of real SDSS frames.

The frames are read in place (`~picasso_astro.sdss.read_frame`) from a
directory the user names, never copied. A mock's light, convolved with the
field's PSF and given its own photon noise, is added to a patch of the frame
whose centre holds no detected source; the patch brings real sky residuals and
gradients, stars with halos, spikes and bleed trails, real neighbours and
artefacts. Real sources have no truth: their pixels are flagged as
contaminants (zero loss weight) and owned by "other" sources.
"""

from functools import lru_cache
from pathlib import Path

import numpy as np
from scipy import ndimage

from ... import _psf
from ..._sources import detect
from ...exceptions import PicassoInputError
from ...images import BANDS, TYPICAL_FWHM, BandImage
from ...sdss import find_frames
from . import _camera as cam
from ._observe import owner_map

__all__ = ["SkyFrames", "open_sky_frames"]


#: Side of the PSF images given to the mocks (that of the model camera).
PSF_SIZE = 41

#: Source detection on the r frame: threshold (sigma) and minimum area, and
#: the pixels the segments are grown by to cover faint wings.
DETECT_NSIGMA = 2.0
DETECT_NPIXELS = 5
DETECT_GROW = 2


def _field_sets(directory):
    """Fields with all five bands under ``directory``: name -> `SDSSField`."""
    fields = find_frames(directory).values()
    return {fld.name: fld for fld in fields if set(fld.paths) == set(BANDS)}


class _Field:
    """One field's five frames, its PSFs and its detected sources."""

    def __init__(self, field_id, sdss_field):
        self.id = field_id
        self.frames = sdss_field.images()
        self.psf, self.fwhm = {}, {}
        for band, frame in self.frames.items():
            psf, fwhm, _ = _psf.psf_for_band(
                frame,
                psfield=sdss_field.psfield_data(),
                fallback_fwhm=TYPICAL_FWHM,
                size=PSF_SIZE,
            )
            self.psf[band] = _psf.normalize_psf(psf)
            self.fwhm[band] = fwhm
        self.bad = {band: frame.bad_pixels() for band, frame in self.frames.items()}
        r = self.frames["r"]
        segm, _ = detect(
            r.data,
            r.noise,
            nsigma=DETECT_NSIGMA,
            npixels=DETECT_NPIXELS,
            mask=self.bad["r"],
        )
        sources = np.zeros(r.shape, dtype=bool) if segm is None else segm.data > 0
        self.sources = ndimage.binary_dilation(sources, iterations=DETECT_GROW)
        self.sources |= self.bad["r"]
        # Distance of each pixel to the nearest source: blank-sky centres.
        self.clearance = ndimage.distance_transform_edt(~self.sources).astype(
            np.float32
        )
        self._centres = {}
        # The sky noise of each band, measured once on the source-free pixels.
        self.sky_noise = {
            band: cam.measure_sky_noise(frame.data, mask=self.sources)
            for band, frame in self.frames.items()
        }

    def centres(self, radius, margin):
        """Pixels (rows, cols) at least ``radius`` from any source (cached)."""
        key = (radius, margin)
        if key not in self._centres:
            inner = self.clearance[margin:-margin, margin:-margin]
            rows, cols = np.nonzero(inner > radius)
            self._centres[key] = (rows + margin, cols + margin)
        return self._centres[key]

    def offsets(self, x, y):
        """Integer pixel offsets of each band from r at r-band pixel (x, y)."""
        sky = self.frames["r"].wcs.pixel_to_world(x, y)
        out = {}
        for band, frame in self.frames.items():
            bx, by = frame.wcs.world_to_pixel(sky)
            out[band] = (round(float(bx) - x), round(float(by) - y))
        return out


class SkyFrames:
    """Real SDSS frames to render mocks into.

    Parameters
    ----------
    directory : path-like
        Searched recursively for corrected frames
        ``frame-{band}-{run}-{camcol}-{field}.fits[.bz2]``; fields with all
        five bands are used (`~picasso_astro.sdss.find_frames`). A field's
        ``psField`` gives its PSFs; otherwise they are measured on the frames'
        stars (`~picasso_astro._psf.estimate_psf`), or a Gaussian of typical
        seeing is assumed.

    Raises
    ------
    PicassoInputError
        If the directory holds no field with all five bands.
    """

    def __init__(self, directory):
        self.directory = Path(directory).expanduser().resolve()
        if not self.directory.is_dir():
            msg = f"sky frames directory {directory} does not exist"
            raise PicassoInputError(msg)
        self.fields = _field_sets(self.directory)
        if not self.fields:
            msg = (
                f"{directory} holds no SDSS field with all five frames "
                "(frame-{u,g,r,i,z}-RUN-CAMCOL-FIELD.fits[.bz2])"
            )
            raise PicassoInputError(msg)
        self.ids = sorted(self.fields)
        self._cache = {}

    def field(self, index):
        """Return the `_Field` of ``ids[index]`` (read once, then kept)."""
        key = self.ids[index]
        if key not in self._cache:
            self._cache[key] = _Field(key, self.fields[key])
        return self._cache[key]

    def blank_position(self, rng, size):
        """Field and lower-left corner of a patch whose centre holds no source.

        The patch centre must be at least ``max(size / 16, 4)`` pixels from
        any detected source or bad pixel of the r frame, and the patch must
        lie on every band's frame. Fields without such a place are skipped.

        Returns
        -------
        field : `_Field`
        index : int
        corner : tuple of int
            ``(x0, y0)`` in the r frame.
        offsets : dict of str to tuple of int
            Each band's pixel offset from r.
        """
        radius = max(size / 16, 4)
        margin = 16 + size // 2
        start = int(rng.integers(len(self.ids)))
        for step in range(len(self.ids)):
            index = (start + step) % len(self.ids)
            field = self.field(index)
            rows, cols = field.centres(radius, margin)
            for _ in range(20 if rows.size else 0):
                pick = int(rng.integers(rows.size))
                x0 = int(cols[pick]) - size // 2
                y0 = int(rows[pick]) - size // 2
                offsets = field.offsets(x0 + size / 2, y0 + size / 2)
                if all(
                    x0 + dx >= 0
                    and x0 + dx + size <= frame.shape[1]
                    and y0 + dy >= 0
                    and y0 + dy + size <= frame.shape[0]
                    for (dx, dy), frame in zip(
                        offsets.values(), field.frames.values(), strict=True
                    )
                ):
                    return field, index, (x0, y0), offsets
        msg = f"no blank-sky position for a {size}-pixel mock in {self.directory}"
        raise PicassoInputError(msg)

    def observe(self, rng, galaxy, neighbour_light, params):
        """Add a mock's light to a blank-sky patch of a real frame.

        Parameters
        ----------
        rng : `~numpy.random.Generator`
        galaxy : `~numpy.ndarray`
            (5, ny, nx) target light in nanomaggies before the PSF.
        neighbour_light : `~numpy.ndarray`
            (5, ny, nx) light of the neighbours with truth.
        params : dict
            The mock's parameters; observing parameters are added.

        Returns
        -------
        images, contaminant, owner, stars, neighbours
            As the Gaussian-sky camera returns them (no synthetic stars or
            light-only neighbours: the real patch holds real ones).
        """
        size = galaxy.shape[-1]
        field, index, (x0, y0), offsets = self.blank_position(rng, size)
        kernels = np.stack([field.psf[band] for band in BANDS])
        stack = np.concatenate(
            [galaxy + neighbour_light, galaxy[2:3], neighbour_light[2:3]]
        ).astype(np.float32)
        convolved = cam.convolve(stack, kernels[[0, 1, 2, 3, 4, 2, 2]])
        model, target_r, neighbour_r = convolved[:5], convolved[5], convolved[6]
        images = {}
        for k, band in enumerate(BANDS):
            frame = field.frames[band]
            dx, dy = offsets[band]
            window = (slice(y0 + dy, y0 + dy + size), slice(x0 + dx, x0 + dx + size))
            real = frame.data[window].astype(np.float32)
            calib = float(np.median(frame.meta["calib"][window[1]]))
            poisson = calib / float(frame.meta["gain"])
            source_variance = np.maximum(model[k], 0) * np.float32(poisson)
            data = real + model[k]
            data += np.sqrt(source_variance) * rng.standard_normal(
                real.shape, dtype=np.float32
            )
            noise = np.sqrt(frame.noise[window] ** 2 + source_variance)
            sky = frame.meta["sky"][window]
            counts = (real + sky) / frame.meta["calib"][window[1]]
            mask = field.bad[band][window] | (counts >= frame.meta["saturation_counts"])
            params[f"seeing_{band}"] = field.fwhm[band]
            params[f"sky_noise_{band}"] = field.sky_noise[band]
            params[f"sky_level_{band}"] = float(np.median(sky))
            params[f"calib_{band}"] = calib
            params[f"poisson_scale_{band}"] = poisson
            params[f"sky_residual_{band}"] = 0.0
            images[band] = BandImage(
                band,
                data,
                noise=noise.astype(np.float32),
                mask=mask,
                psf=field.psf[band].astype(np.float32),
                psf_fwhm=field.fwhm[band],
                meta={"source": "mock on a real frame", "field": field.id},
            )
        params["field_index"] = -1.0
        params["real_sky"] = 1.0
        params["sky_field"] = float(index)
        params["sky_x0"], params["sky_y0"] = float(x0), float(y0)
        for key in ("stars", "neighbours", "cosmic_rays", "bad_columns", "saturated"):
            params[f"n_{key}"] = 0.0
        real_sources = field.sources[y0 : y0 + size, x0 : x0 + size]
        threshold = params["sky_noise_r"]
        real_r = field.frames["r"].data[y0 : y0 + size, x0 : x0 + size]
        other_r = np.where(real_sources, np.maximum(real_r, 2 * threshold), 0.0)
        contaminant = real_sources | (neighbour_r > threshold)
        owner = owner_map(target_r, neighbour_r, other_r, threshold)
        return images, contaminant, owner, [], []


@lru_cache(maxsize=4)
def _open(directory):
    return SkyFrames(directory)


def open_sky_frames(directory):
    """Return the `SkyFrames` of ``directory``, one per process (cached).

    Parameters
    ----------
    directory : path-like

    Returns
    -------
    sky : `SkyFrames`
    """
    return _open(str(Path(directory).expanduser().resolve()))
