"""`robustscale study ...`: the human-validity study of §4 (web app, scoring, VLM rater)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional

import typer

study_app = typer.Typer(help="Human-validity study of adversarial images (paper §4, App. G).",
                        no_args_is_help=True)

DB_HELP = "SQLAlchemy URL (default: $ROBUSTSCALE_STUDY_DB or sqlite:///robustscale-study.db)."


def _sessions(db: str | None):
    from robustscale.study.config import Settings
    from robustscale.study.db import make_engine, make_sessionmaker

    return make_sessionmaker(make_engine(Settings.from_env(db_url=db).db_url))


@study_app.command()
def create(
    adversarial: Path = typer.Option(..., help="adversarial.npz, or a `robustscale evaluate` --out folder."),
    clean: Path = typer.Option(..., help="clean.npz (same images before the attack), or the same folder."),
    name: str = typer.Option(..., help="Name of the new study."),
    predictions: Optional[Path] = typer.Option(None, help=".npy/.npz of the model's predictions "
                                               "(default: 'predictions' in the adversarial npz)."),
    batch_size: int = typer.Option(100, help="Images per batch (App. G.1: 100)."),
    raters: int = typer.Option(3, help="Human raters per image (§4.1: 3)."),
    total: Optional[int] = typer.Option(None, help="Test images the attack ran on, if the files "
                                        "hold only the successful attacks (paper: 10000)."),
    db: Optional[str] = typer.Option(None, help=DB_HELP),
    json_output: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """Import adversarial images and their clean versions into a new study."""
    from robustscale.commands.output import print_json
    from robustscale.study.service import create_study

    info = create_study(_sessions(db), name, adversarial, clean, predictions, batch_size, raters,
                        total)
    if json_output:
        print_json(info)
    else:
        print(f"study {info['study']}: {info['images']} attacked images in {info['batches']} "
              f"batches ({info['robust']} of {info['total']} robust)")


@study_app.command("add-rater")
def add_rater_cmd(
    study: str = typer.Argument(..., help="Study name."),
    name: str = typer.Argument(..., help="Rater's name (shown to admins only)."),
    base_url: str = typer.Option("http://127.0.0.1:8000", help="Where `study serve` is reachable."),
    days: Optional[float] = typer.Option(None, help="Link expires after this many days."),
    db: Optional[str] = typer.Option(None, help=DB_HELP),
    json_output: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """Add a human rater and print their personal link (its token is shown only once)."""
    from robustscale.commands.output import print_json
    from robustscale.study.service import add_rater

    rater, token = add_rater(_sessions(db), study, name, days=days)
    link = f"{base_url.rstrip('/')}/r/{token}"
    if json_output:
        print_json({"study": study, "rater": name, "token": token, "link": link})
    else:
        print(link)


@study_app.command()
def serve(
    db: Optional[str] = typer.Option(None, help=DB_HELP),
    host: str = typer.Option("127.0.0.1", help="Interface to listen on."),
    port: int = typer.Option(8000, help="TCP port."),
    rate_limit: float = typer.Option(5.0, help="Answers per second per rater (burst 20)."),
) -> None:
    """Serve the rater pages, admin pages (/admin) and the quiz (/quiz/STUDY).

    The admin password is $ROBUSTSCALE_STUDY_ADMIN_TOKEN; without it one is made up and printed."""
    import secrets

    import uvicorn

    from robustscale.study.app import create_app
    from robustscale.study.config import Settings

    settings = Settings.from_env(db_url=db, rate_limit=rate_limit)
    if settings.admin_token is None:
        import dataclasses

        settings = dataclasses.replace(settings, admin_token=secrets.token_urlsafe(16))
        print(f"admin token (this run only): {settings.admin_token}", file=sys.stderr)
    # keep-alive longer than a rater's pause between answers, so a reused connection is not
    # closed under a request in flight
    uvicorn.run(create_app(settings), host=host, port=port, log_level="warning",
                timeout_keep_alive=75)


@study_app.command()
def export(
    study: str = typer.Argument(..., help="Study name."),
    out: Path = typer.Option(..., help="CSV file to write."),
    db: Optional[str] = typer.Option(None, help=DB_HELP),
    json_output: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """Write every answer of a study (with true labels and predictions) as CSV."""
    from robustscale.commands.output import print_json
    from robustscale.study.service import export_answers

    n = export_answers(_sessions(db), study, out)
    if json_output:
        print_json({"study": study, "out": str(out), "answers": n})
    else:
        print(f"{n} answers -> {out}")


@study_app.command()
def score(
    study: str = typer.Argument(..., help="Study name."),
    db: Optional[str] = typer.Option(None, help=DB_HELP),
    json_output: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """Valid/invalid (deceptive, ambiguous) images, human accuracy, Table 4, Fleiss' kappa."""
    from robustscale.commands.output import print_json
    from robustscale.study.service import score_study_by_name

    result = score_study_by_name(_sessions(db), study)
    if json_output:
        print_json(result)
        return
    from rich.console import Console
    from rich.table import Table

    def pct(x):
        return "–" if x is None else f"{100 * x:.2f}%"

    kappa = result["fleiss_kappa_adversarial"]

    t4 = result["table4"]
    table = Table(title=f"study {study}: Table 4")
    for col in ("Configuration", "All Data", "Valid Data"):
        table.add_column(col)
    table.add_row("Model", pct(t4["model_all_data"]), pct(t4["model_valid_data"]))
    table.add_row("Model + Avg Human", pct(t4["human_all_data"]), pct(t4["human_valid_data"]))
    console = Console()
    console.print(f"{result['images']} attacked images: {result['valid']} valid, "
                  f"{result['invalid']} invalid ({result['deceptive']} deceptive, "
                  f"{result['ambiguous']} ambiguous)")
    console.print(f"human accuracy: adversarial {pct(result['human_adversarial_accuracy'])}, "
                  f"clean {pct(result['human_clean_accuracy'])}; Fleiss' kappa (adversarial) "
                  f"{'–' if kappa is None else f'{kappa:.3f}'}")
    if result["vlm"] is not None:
        console.print(f"VLM {result['vlm']['rater']}: adversarial "
                      f"{pct(result['vlm']['adversarial_accuracy'])}, all data "
                      f"{pct(result['vlm']['accuracy_all_data'])}")
    console.print(table)
    console.print(f"invalid attacks counted as failed: {pct(t4['model_invalid_as_robust'])}")


@study_app.command("vlm-rate")
def vlm_rate_cmd(
    study: str = typer.Argument(..., help="Study name."),
    base_url: str = typer.Option(..., help="OpenAI-compatible API root, e.g. https://api.openai.com/v1."),
    model: str = typer.Option(..., help="Model name sent in the request."),
    name: Optional[str] = typer.Option(None, help="Rater name (default: the model name)."),
    retries: int = typer.Option(5, help="Retries per image on 429/5xx/connection errors."),
    backoff: float = typer.Option(1.0, help="First retry delay in seconds (doubles each retry)."),
    db: Optional[str] = typer.Option(None, help=DB_HELP),
    json_output: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """Rate the adversarial images with a VLM (App. G.2's prompt) as the 4th rater; resumable.

    The API key is read from $ROBUSTSCALE_VLM_API_KEY, else $OPENAI_API_KEY (none: no header)."""
    import os

    from rich.console import Console
    from rich.progress import Progress

    from robustscale.commands.output import print_json
    from robustscale.study.vlm import API_KEY_ENVS, vlm_rate

    key = next((os.environ[e] for e in API_KEY_ENVS if os.environ.get(e)), None)
    with Progress(transient=True, console=Console(stderr=True)) as bar:
        task = bar.add_task("VLM rating", total=None)
        result = vlm_rate(_sessions(db), study, base_url, model, key, name, retries, backoff,
                          on_image=lambda k, n: bar.update(task, completed=k, total=n))
    if json_output:
        print_json(result)
    else:
        print(f"{result['rated']} images rated by {result['rater']} "
              f"({result['already_rated']} before, {result['unparsed']} unparsed replies)")


def register(app: typer.Typer) -> None:
    app.add_typer(study_app, name="study")
