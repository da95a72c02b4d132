"""A field's bands prepared once (on one Dask worker) and used by all its tasks.

On a synthetic SDSS field made here (`field_helpers.write_field`): what
`prepare_band` makes of a band, given to another copy of the field with
`adopt_bands`, prepares galaxies exactly as the field would by itself,
without reading its frames again.
"""

import pickle

import numpy as np
import pytest
from field_helpers import write_field

from picasso_astro import _psf
from picasso_astro._field_setup import adopt_bands, prepare_band
from picasso_astro.images import BANDS
from picasso_astro.preprocess import field_backgrounds, prepare_target
from picasso_astro.sdss import find_frames

OPTIONS = {"mask_sources": True, "match_psf": True}


def _prepared(fld, coord):
    return prepare_target(
        fld.images(),
        coord,
        size=96,
        options=OPTIONS,
        backgrounds=field_backgrounds(fld),
        psfield=fld.psfield_data(),
    )


def test_bands_prepared_elsewhere_give_the_same_galaxies(tmp_path):
    folder = write_field(tmp_path)
    (fld,) = find_frames(folder).values()
    coord = fld.geometry()[0].pixel_to_world(250.0, 140.0)
    _psf.forget_star_psfs()
    with pytest.warns(UserWarning, match="assumed the typical SDSS seeing"):
        alone = _prepared(fld, coord)
    # Sent to another process: paths only.
    elsewhere = pickle.loads(pickle.dumps(fld))
    fld.clear()

    bands = [prepare_band(fld, band) for band in BANDS]
    assert [entry.band for entry in bands] == list(BANDS)
    assert fld.cache == {}, "the field given is left as it was"
    for entry in bands:
        assert entry.image.meta.get("frame_rows") is None
        assert entry.background[1]["scope"] == "field"
        # No stars in this field: what was found is kept, a failure too.
        assert isinstance(entry.star_psf, str)
        assert "PSF" in entry.star_psf

    # The other process knows nothing of these frames, and cannot read them.
    _psf.forget_star_psfs()
    for path in folder.iterdir():
        path.unlink()
    adopt_bands(elsewhere, bands)
    for entry in bands:
        assert _psf.star_psf_known(entry.image.meta["frame_id"])
        assert elsewhere.image(entry.band) is entry.image
    with pytest.warns(UserWarning, match="assumed the typical SDSS seeing"):
        there = _prepared(elsewhere, coord)
    np.testing.assert_array_equal(there.bitmask, alone.bitmask)
    for band in BANDS:
        np.testing.assert_array_equal(there.images[band].data, alone.images[band].data)
    assert there.steps == alone.steps


def test_a_band_that_cannot_be_prepared_is_left_to_the_field(tmp_path):
    folder = write_field(tmp_path)
    (fld,) = find_frames(folder).values()
    fld.paths["g"].unlink()
    assert prepare_band(fld, "g") is None
    assert prepare_band(fld, "r") is not None
    adopt_bands(fld, [None])
    assert fld.cache == {}


def test_only_the_fields_own_whole_frames_are_adopted(tmp_path):
    (fld,) = find_frames(write_field(tmp_path)).values()
    r_band = prepare_band(fld, "r")
    with pytest.raises(ValueError, match="is not the g frame"):
        fld.adopt_image("g", r_band.image)
    part = r_band.image.replace(meta=dict(r_band.image.meta, frame_rows=(0, 10)))
    with pytest.raises(ValueError, match="only some rows"):
        fld.adopt_image("r", part)
