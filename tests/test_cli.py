from click.testing import CliRunner

from picasso_astro import PropertyMaps
from picasso_astro.cli import main, predict_command


def _run(*args):
    return CliRunner().invoke(predict_command, [str(a) for a in args])


def test_help_shows_examples():
    result = _run("--help")
    assert result.exit_code == 0
    assert "Examples:" in result.output and "picasso-predict" in result.output


def test_writes_one_file_per_galaxy(cutout_files, tiny_model_dir, tmp_path):
    out = tmp_path / "maps"
    result = _run(*cutout_files, "-o", out, "--model", tiny_model_dir)
    assert result.exit_code == 0, result.output
    maps = PropertyMaps.read(out / "gal1.fits")
    assert maps.meta["model"] == "tiny-test"


def test_bad_galaxy_fails_unless_skipped(cutout_files, tiny_model_dir, tmp_path):
    bad = tmp_path / "other-r.fits"
    bad.write_text("not fits")
    out = tmp_path / "maps"
    result = _run(*cutout_files, bad, "-o", out, "--model", tiny_model_dir)
    assert result.exit_code == 1
    errors = [line for line in result.output.splitlines() if line.startswith("error")]
    assert len(errors) == 1 and "other-r.fits" in errors[0]
    assert (out / "gal1.fits").exists()
    result = _run(
        *cutout_files,
        bad,
        "-o",
        out,
        "--model",
        tiny_model_dir,
        "--skip-errors",
        "--overwrite",
    )
    assert result.exit_code == 0, result.output


def test_existing_output_needs_overwrite(cutout_files, tiny_model_dir, tmp_path):
    out = tmp_path / "maps"
    assert _run(*cutout_files, "-o", out, "--model", tiny_model_dir).exit_code == 0
    # A rerun keeps the complete file (and says how to replace it): it succeeds.
    result = _run(*cutout_files, "-o", out, "--model", tiny_model_dir)
    assert result.exit_code == 0 and "--overwrite" in result.output
    result = _run(*cutout_files, "-o", out, "--model", tiny_model_dir, "--overwrite")
    assert result.exit_code == 0


def test_bad_model_is_one_clear_line(cutout_files, tmp_path):
    result = _run(*cutout_files, "-o", tmp_path, "--model", tmp_path / "none")
    assert result.exit_code == 1
    assert "Error:" in result.output and "Traceback" not in result.output


def test_main_routes_files_to_run(cutout_files, tiny_model_dir, tmp_path):
    out = tmp_path / "maps"
    args = [*map(str, cutout_files), "-o", str(out), "--model", str(tiny_model_dir)]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    assert (out / "gal1.fits").exists()
    result = CliRunner().invoke(main, ["--help"])
    assert result.exit_code == 0 and "Examples:" in result.output
    assert "run" in result.output
    assert "\\b" not in result.output and "run --help" in result.output
