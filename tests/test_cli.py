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
