"""Command-line options shared by the commands that read IFU products.

``picasso-predict compare`` and ``picasso-train ifu`` take MaNGA redshifts
and the O/H calibration the same way.
"""

import click

__all__ = ["calibration_option", "drpall_option"]

drpall_option = click.option(
    "--drpall",
    type=click.Path(exists=True, dir_okay=False),
    default=None,
    help="MaNGA drpall or drpcomplete table with the galaxies' redshifts "
    "(default for a MAPS file: its header).",
)

calibration_option = click.option(
    "--calibration",
    type=click.Choice(["M13", "PP04"]),
    default="M13",
    show_default=True,
    help="O/H calibration of MaNGA lines: Marino+13 or Pettini & Pagel 04.",
)
