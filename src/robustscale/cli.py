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
    from robustscale.commands import (data, demo, evaluate, flops, laws, report, runs, study,
                                      sweep, train)

    for module in (laws, flops, evaluate, data, train, sweep, runs, report, demo, study):
        module.register(app)


def main() -> None:
    """Console entry point: bad input becomes one `error:` line on stderr and exit code 2."""
    _register_all()
    try:
        app()  # click's standalone mode handles usage errors, --help and typer.Exit itself
    except RobustscaleError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
