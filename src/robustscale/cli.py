"""The `robustscale` command line: a thin typer app over library functions."""

from __future__ import annotations

import sys

import typer

from robustscale.commands.output import JsonOption, emit
from robustscale.errors import RobustscaleError

app = typer.Typer(
    name="robustscale",
    help="Scaling laws, adversarial training, robust evaluation and human studies "
    "for adversarial robustness (Bartoldson et al., ICML 2024).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback()
def _root() -> None:
    """Scaling laws, adversarial training, robust evaluation and human studies for adversarial
    robustness (Bartoldson et al., ICML 2024)."""


@app.command()
def version(json_output: JsonOption = False) -> None:
    """Print robustscale's version."""
    from robustscale import __version__

    emit({"version": __version__}, json_output, lambda v: print(v["version"]))


def _register_all() -> None:
    from robustscale.commands import (data, demo, evaluate, export, fit, flops, plan, plot, report, runs,
                                      simulate, study, sweep, tradeoff, train)
    from robustscale.commands import suggest as suggest_command

    for module in (fit, plan, tradeoff, plot, simulate, flops, evaluate, export, data, train, sweep, runs,
                   report, demo, study, suggest_command):
        module.register(app)


def main() -> None:
    """Console entry point: bad input becomes one `error:` line on stderr and exit code 2."""
    _register_all()
    try:
        # Not standalone: click's usage errors reach us and print as one line like every other
        # error; --help and typer.Exit come back as an exit code.
        code = app(standalone_mode=False)
    except RobustscaleError as e:
        print(f"error: {_in_flags(str(e), sys.argv[1:])}", file=sys.stderr)
        sys.exit(2)
    except typer.Abort:
        print("error: aborted", file=sys.stderr)
        sys.exit(1)
    except Exception as e:
        # click's exceptions (typer may run on a vendored click, so match by interface, not class)
        if not hasattr(e, "format_message"):
            raise
        if type(e).__name__ == "NoArgsIsHelpError":  # `robustscale` (or a group) alone: its help
            e.show()
            sys.exit(e.exit_code)
        hint = f" (see '{e.ctx.command_path} --help')" if getattr(e, "ctx", None) is not None else ""
        print(f"error: {' '.join(e.format_message().split())}{hint}", file=sys.stderr)
        sys.exit(2)
    if isinstance(code, int) and code:
        sys.exit(code)


def _in_flags(message: str, argv: list[str]) -> str:
    """A library error names a parameter (`real_fraction: expected ...`); at the command line, say the
    flag that sets it (`--real-fraction: expected ...`) when the invoked command has one."""
    import re

    match = re.match(r"([a-z][a-z0-9_]*):", message)
    if not match:
        return message
    command = typer.main.get_command(app)
    for word in argv:  # walk down to the invoked (sub)command
        sub = getattr(command, "commands", {}).get(word)
        if sub is None:
            break
        command = sub
    name = match.group(1)
    for param in getattr(command, "params", []):
        flags = [o for o in getattr(param, "opts", []) if o.startswith("--")]
        if flags and (param.name == name or f"--{name.replace('_', '-')}" in flags):
            return flags[0] + message[len(name):]
    return message


if __name__ == "__main__":
    main()
