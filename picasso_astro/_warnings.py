"""Silence one library's warning at one call site, safely from several threads."""

import contextlib
import threading
import warnings

__all__ = ["ignoring"]

_LOCK = threading.RLock()


@contextlib.contextmanager
def ignoring(category=Warning, *, message=""):
    """Ignore warnings of ``category`` (and ``message`` regex) inside the block.

    `warnings.catch_warnings` swaps the process-wide filter list, so two threads
    inside it at once can remove each other's filters (before Python 3.14);
    galaxies are prepared on several threads, so these blocks run one at a time.
    """
    with _LOCK, warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=message, category=category)
        yield


@contextlib.contextmanager
def quiet_preparation():
    """Silence the warnings libraries give routinely while galaxies are prepared.

    Entered by the thread that starts the preparing threads, before they start
    and until they end: every filter list the threads save and restore then
    holds these filters, so no thread can drop them (which `ignoring` alone
    cannot promise when a library uses `warnings.catch_warnings` itself).
    """
    from astropy.utils.exceptions import AstropyUserWarning
    from astropy.wcs import FITSFixedWarning
    from photutils.utils.exceptions import NoDetectionsWarning

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=NoDetectionsWarning)
        warnings.filterwarnings("ignore", category=FITSFixedWarning)
        warnings.filterwarnings(
            "ignore", message="The deblending mode", category=AstropyUserWarning
        )
        yield
