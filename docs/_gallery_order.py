"""The order of the examples in the gallery (a sphinx-gallery sort key)."""

EXAMPLE_ORDER = (
    "plot_sdss_frame.py",
    "plot_colour_ml.py",
    "plot_fits_io.py",
    "plot_catalogue.py",
    "plot_ifu_manga.py",
    "plot_train_tiny_model.py",
    "plot_mock_kinds.py",
)


class ExampleOrder:
    """Sort the examples as in `EXAMPLE_ORDER`, then by file name."""

    def __init__(self, src_dir):
        self.src_dir = src_dir

    def __call__(self, filename):
        if filename in EXAMPLE_ORDER:
            return (EXAMPLE_ORDER.index(filename), filename)
        return (len(EXAMPLE_ORDER), filename)

    def __repr__(self):
        return "<ExampleOrder>"
