"""Cached access to the real SDSS fields in ../shared/data for the tests.

Each field's frames are decompressed once per test session, however many tests
use them (`~picasso_astro.sdss.SDSSField` keeps what it reads).
"""

import functools

from helpers import SHARED_DATA

from picasso_astro import sdss

SDSS = SHARED_DATA / "sdss"
FIELD_4510 = "field-004510-4-0030"
FIELD_2583 = "field-002583-2-0136"
FIELD_5405 = "field-005405-6-0099"
SUBIMAGE = "subimage-001000-1-0100"


@functools.cache
def get_field(folder):
    """Return the one `SDSSField` in ``SDSS / folder`` (cached)."""
    fields = sdss.find_frames(SDSS / folder)
    (field,) = fields.values()
    return field
