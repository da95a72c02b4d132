"""The package's version, for provenance (no other imports)."""

try:
    from ._version import version as __version__
except ImportError:  # pragma: no cover - only without an installed version file
    __version__ = "0.0.0"

__all__ = ["__version__"]
