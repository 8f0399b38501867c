"""The command line as a whole: help lists every command; bad input is one `error:` line, exit 2."""

import inspect

import typer


def _commands():
    """{command path: its docstring's first paragraph as one line} of every (sub)command."""
    from robustscale.cli import _register_all, app

    _register_all()
    out = {}

    def walk(group, prefix):
        for name, command in getattr(group, "commands", {}).items():
            path = f"{prefix} {name}".strip()
            out[path] = " ".join(inspect.cleandoc(command.help or "").split("\n\n")[0].split())
            walk(command, path)

    walk(typer.main.get_command(app), "")
    return out


def test_help_lists_every_command_with_its_whole_summary(cli):
    """At 80 columns each command's line in its group's list is its whole first sentence or
    paragraph, never cut with "..." (click's default) or at "App." (a summary's first ". ")."""
    commands = _commands()
    assert {"fit", "plan", "report", "study", "study score", "runs collect"} <= set(commands)
    for group in ("", "study", "data", "runs"):
        listed = [c for c in commands if c.rpartition(" ")[0] == group]
        r = cli(*group.split(), "--help", env={"COLUMNS": "80"})
        listing = r.stdout.partition("Commands:")[2]
        assert r.returncode == 0 and listing and "..." not in listing and "…" not in listing, r.stdout
        flat = " ".join(listing.split())
        for path in listed:
            assert f"{path.rpartition(' ')[2]} {commands[path]}" in flat, (path, commands[path])


def test_command_help_reads_as_sentences(cli):
    """A docstring's hard line breaks do not survive into --help: its paragraphs are rewrapped to the
    terminal, and every flag is printed whole."""
    r = cli("fit", "--help", env={"COLUMNS": "80"})
    assert r.returncode == 0 and max(len(line) for line in r.stdout.splitlines()) <= 80
    assert "…" not in r.stdout and "--keep-small-runs" in r.stdout and "--accuracy-map" in r.stdout
    lines = [line.strip() for line in r.stdout.splitlines()]
    # the docstring breaks after "and a law"; the help text rewraps it to fill each line
    paragraph = next(i for i, line in enumerate(lines) if line.startswith("Warns about parameters"))
    assert len(lines[paragraph]) > 60 and not lines[paragraph].endswith("and a law")


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
