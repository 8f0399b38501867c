"""The command line as a whole: help lists every command; bad input is one `error:` line, exit 2."""


def test_help_lists_commands(cli):
    r = cli("--help")
    assert r.returncode == 0, r
    for command in ("fit", "train", "sweep", "runs", "report", "demo", "study"):
        assert command in r.stdout, command


def test_bad_input_is_one_error_line(cli, tmp_path):
    r = cli("report", tmp_path / "missing.csv", "--out", tmp_path / "out")
    assert r.returncode == 2 and r.stderr.startswith("error: ") and len(r.stderr.strip().splitlines()) == 1
    assert "missing.csv" in r.stderr and "Traceback" not in r.stderr


def test_library_errors_name_the_flag(cli, tmp_path):
    """The library says `real_fraction: ...`; the command line says which flag to change."""
    r = cli("train", "--model", "wrn-10-1", "--data", "fashion-mnist", "--samples", "100",
            "--real-fraction", "2", "--out", tmp_path / "run")
    assert r.returncode == 2 and r.stderr.startswith("error: --real-fraction: "), r.stderr
    assert not (tmp_path / "run").exists()
