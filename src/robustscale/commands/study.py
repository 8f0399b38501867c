"""`robustscale study ...`: the human-validity study of §4 (web app, scoring, VLM rater)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional

import typer

from robustscale.commands.output import JsonOption, emit, table, warn
from robustscale.formatting import pct
from robustscale.human_study.config import (
    BATCH_SIZE,
    MAX_ATTENTION_FAILURE,
    N_RATERS,
    VLM_MAX_TOKENS,
    VLM_TEMPERATURE,
    VLM_TIMEOUT,
)

study_app = typer.Typer(help="Human-validity study of adversarial images (paper §4, App. G).",
                        no_args_is_help=True)

DB_HELP = ("SQLAlchemy URL (default: $ROBUSTSCALE_STUDY_DB, else sqlite:///robustscale-study.db: "
           "the file robustscale-study.db in the current folder).")


def _sessions(db: str | None):
    from robustscale.human_study.config import Settings
    from robustscale.human_study.db import make_engine, make_sessionmaker

    return make_sessionmaker(make_engine(Settings.from_env(db_url=db).db_url))


def _pct(x) -> str:
    return pct(x, decimals=2)  # "–" for a missing value, as every format of robustscale.formatting


@study_app.command()
def create(
    adversarial: Path = typer.Option(..., help="adversarial.npz, or a `robustscale evaluate` --out folder."),
    clean: Path = typer.Option(..., help="clean.npz (same images before the attack), or the same folder."),
    name: str = typer.Option(..., help="Name of the new study."),
    predictions: Optional[Path] = typer.Option(None, help=".npy/.npz of the model's predictions "
                                               "(default: 'predictions' in the adversarial npz)."),
    no_predictions: bool = typer.Option(False, "--no-predictions", help="Import without the "
                                        "model's predictions: every image is shown, deceptive/"
                                        "ambiguous are left unknown."),
    batch_size: int = typer.Option(BATCH_SIZE, help="Images per batch (App. G.1: 100)."),
    raters: int = typer.Option(N_RATERS, help="Human raters per image (§4.1: 3)."),
    total: Optional[int] = typer.Option(None, help="Test images the attack ran on, needed only when "
                                        "the files hold just the successful attacks (paper: "
                                        "10000). An evaluate folder holds every attacked image, "
                                        "robust ones included: the total is their count."),
    data: Optional[str] = typer.Option(None, "--data", help="Dataset whose class names the raters choose "
                                       "from (cifar10, cifar100, svhn, tiny-imagenet, fashion-mnist; "
                                       "default: the npz files' classes, else CIFAR-10's)."),
    data_dir: Optional[Path] = typer.Option(None, "--data-dir", help="TinyImageNet's folder (its names are "
                                            "in its words.txt)."),
    attention_checks: float = typer.Option(0.0, "--attention-checks", help="Share of attention "
                                           "checks among the images a rater sees (e.g. 0.05): "
                                           "clean images of robust test images, spread through "
                                           "the study, not scored; `study score` leaves out "
                                           "raters who fail too many."),
    db: Optional[str] = typer.Option(None, help=DB_HELP),
    json_output: JsonOption = False,
) -> None:
    """Import adversarial images and their clean versions into a new study.

    The model's verdicts are its predictions on the saved uint8 images (what raters see), as
    in `evaluate`'s accuracy_uint8."""
    from robustscale.data.datasets import class_names
    from robustscale.errors import RobustscaleError
    from robustscale.human_study.images import create_study

    classes = class_names(data, data_dir) if data is not None else None
    try:
        info = create_study(_sessions(db), name, adversarial, clean, predictions, batch_size, raters,
                            total, require_predictions=not no_predictions, classes=classes,
                            attention_checks=attention_checks)
    except RobustscaleError as e:  # the library names its parameter; say which flag sets it
        message = str(e).replace("require_predictions=False", "--no-predictions")
        message = message.replace("classes: ", "--data: ").replace("the dataset", "--data")
        message = message.replace("attention_checks ", "--attention-checks ").replace("total ", "--total ", 1)
        raise RobustscaleError(message) from None
    emit(info, json_output, lambda i: print(
        f"study {i['study']}: {i['images']} attacked images in {i['batches']} batches "
        f"({i['robust']} of {i['total']} robust"
        + (f", {i['attention_checks']} attention checks)" if i["attention_checks"] else ")")))


@study_app.command("add-rater")
def add_rater_cmd(
    study: str = typer.Argument(..., help="Study name."),
    name: str = typer.Argument(..., help="Rater's name (shown to admins only)."),
    base_url: str = typer.Option("http://127.0.0.1:8000", help="Where `study serve` is reachable."),
    days: Optional[float] = typer.Option(None, help="Link expires after this many days (> 0)."),
    db: Optional[str] = typer.Option(None, help=DB_HELP),
    json_output: JsonOption = False,
) -> None:
    """Add a human rater and print their personal link (its token is shown only once)."""
    from robustscale.human_study.answers import add_rater

    _, token = add_rater(_sessions(db), study, name, days=days)
    link = f"{base_url.rstrip('/')}/r/{token}"
    emit({"study": study, "rater": name, "token": token, "link": link}, json_output,
         lambda r: print(r["link"]))


@study_app.command("revoke-rater")
def revoke_rater_cmd(
    study: str = typer.Argument(..., help="Study name."),
    name: str = typer.Argument(..., help="Rater's name."),
    db: Optional[str] = typer.Option(None, help=DB_HELP),
    json_output: JsonOption = False,
) -> None:
    """End a rater's link now (their answers stay); a running server refuses it within seconds."""
    from robustscale.human_study.answers import revoke_rater

    emit(revoke_rater(_sessions(db), study, name), json_output,
         lambda r: print(f"rater {r['rater']} of study {r['study']}: link revoked"))


@study_app.command()
def recruit(
    study: str = typer.Argument(..., help="Study name."),
    completion_url: str = typer.Option(..., help="Where a participant goes when done, with its "
                                       "code (Prolific: https://app.prolific.com/submissions/"
                                       "complete?cc=CODE)."),
    max_raters: Optional[int] = typer.Option(None, help="Participants the link admits (default: "
                                             "no limit)."),
    days: Optional[float] = typer.Option(None, help="The link closes after this many days."),
    base_url: str = typer.Option("http://127.0.0.1:8000", help="Where `study serve` is reachable."),
    db: Optional[str] = typer.Option(None, help=DB_HELP),
    json_output: JsonOption = False,
) -> None:
    """Print the study's public join link for a recruiting platform.

    Give the platform the link; it adds PROLIFIC_PID, STUDY_ID and SESSION_ID (any `?pid=ID`
    works too). Each participant gets one rater (joining again resumes it), sees a consent page
    and the instructions, and is sent to the completion URL when done."""
    from robustscale.errors import RobustscaleError
    from robustscale.human_study.recruit import recruit as open_recruitment

    try:
        info = open_recruitment(_sessions(db), study, completion_url, max_raters, days)
    except RobustscaleError as e:
        raise RobustscaleError(str(e).replace("completion_url", "--completion-url")
                               .replace("max_raters", "--max-raters").replace("days", "--days")) from None
    info["link"] = f"{base_url.rstrip('/')}{info.pop('path')}"
    emit(info, json_output, lambda r: print(r["link"]))


@study_app.command()
def serve(
    db: Optional[str] = typer.Option(None, help=DB_HELP),
    create: bool = typer.Option(False, "--create", help="Create the database if it does not exist "
                                "(otherwise a missing database is an error)."),
    host: str = typer.Option("127.0.0.1", help="Interface to listen on."),
    port: int = typer.Option(8000, help="TCP port."),
    rate_limit: float = typer.Option(5.0, help="Answers per second per rater (burst 20)."),
    max_body: Optional[int] = typer.Option(None, help="Largest request body in bytes "
                                           "(default 65536); larger ones get 413 unread."),
) -> None:
    """Serve the rater pages, admin pages (/admin), the quiz (/quiz/STUDY) and join links.

    The admin password is $ROBUSTSCALE_STUDY_ADMIN_TOKEN; without it one is made up and printed."""
    import dataclasses
    import secrets

    import uvicorn

    from robustscale.human_study.app import create_app
    from robustscale.human_study.config import Settings
    from robustscale.human_study.db import database_exists, study_count

    settings = Settings.from_env(db_url=db, rate_limit=rate_limit, max_body=max_body)
    if not create:
        database_exists(settings.db_url)  # raises, naming --create
    if settings.admin_token is None:
        settings = dataclasses.replace(settings, admin_token=secrets.token_urlsafe(16))
        print(f"admin token (this run only): {settings.admin_token}", file=sys.stderr)
    # keep-alive longer than a rater's pause between answers, so a reused connection is not
    # closed under a request in flight
    app = create_app(settings)
    print(f"serving http://{host}:{port} (database {settings.db_url}, "
          f"{study_count(app.state.sessions)} studies); admin pages at /admin", file=sys.stderr, flush=True)
    uvicorn.run(app, host=host, port=port, log_level="warning", timeout_keep_alive=75)


@study_app.command()
def export(
    study: str = typer.Argument(..., help="Study name."),
    out: Path = typer.Option(..., help="CSV file to write."),
    db: Optional[str] = typer.Option(None, help=DB_HELP),
    json_output: JsonOption = False,
) -> None:
    """Write every answer of a study (with true labels, predictions, VLM replies) as CSV.

    Text cells a spreadsheet would run as a formula are prefixed with a quote."""
    from robustscale.human_study.results import export_answers

    n = export_answers(_sessions(db), study, out)
    emit({"study": study, "out": str(out), "answers": n}, json_output,
         lambda r: print(f"{r['answers']} answers -> {r['out']}"))


@study_app.command("import-answers")
def import_answers_cmd(
    study: str = typer.Argument(..., help="Study name (created first with `study create`)."),
    answers: Path = typer.Argument(..., help="CSV with the columns `study export` writes (at "
                                   "least rater, index, phase, choice, confidence; kind: "
                                   "human unless the row says vlm)."),
    db: Optional[str] = typer.Option(None, help=DB_HELP),
    json_output: JsonOption = False,
) -> None:
    """Add answers collected elsewhere (or exported before) to a study, all or nothing."""
    from robustscale.human_study.results import import_answers

    emit(import_answers(_sessions(db), study, answers), json_output, lambda r: print(
        f"{r['answers']} answers imported into {r['study']} "
        f"({len(r['raters_created'])} raters created)"))


def _render_score(result: dict) -> None:
    from robustscale.commands.output import console

    t4 = result["table4"]
    out = console()
    dec = "unknown" if result["deceptive"] is None else result["deceptive"]
    amb = "unknown" if result["ambiguous"] is None else result["ambiguous"]
    out.print(f"{result['images']} attacked images: {result['valid']} valid, "
              f"{result['invalid']} invalid ({dec} deceptive, {amb} ambiguous), "
              f"{result['unrated']} unrated")
    kappa = result["fleiss_kappa_adversarial"]
    why = result["fleiss_kappa_undefined"]["adversarial"]
    out.print(f"human accuracy: adversarial {_pct(result['human_adversarial_accuracy'])}, "
              f"clean {_pct(result['human_clean_accuracy'])} "
              f"({len(result['humans'])} raters scored); Fleiss' kappa (adversarial) "
              f"{f'undefined ({why})' if kappa is None else f'{kappa:.3f}'}")
    if result["left_out"]:
        out.print(f"{len(result['left_out'])} raters left out: " + "; ".join(
            f"{r['rater']} {r['reason']}" for r in result["left_out"]))
    if result["vlm"] is not None:
        out.print(f"VLM {result['vlm']['rater']}: adversarial "
                  f"{_pct(result['vlm']['adversarial_accuracy'])}, all data "
                  f"{_pct(result['vlm']['accuracy_all_data'])}")

    def fig(key):
        lo, hi = t4["bounds"][key]
        return _pct(t4[key]) if t4[key] is not None else f"{_pct(lo)} – {_pct(hi)}"

    table(f"study {result['study']}: Table 4 (all data | valid data)", [
        ("Model", f"{fig('model_all_data')} | {fig('model_valid_data')}"),
        ("Model + Avg Human", f"{fig('human_all_data')} | {fig('human_valid_data')}"),
        ("Invalid counted as failed attacks", fig("model_invalid_as_robust"))])
    out.print(f"rule: {result['rule']}", style="dim")


@study_app.command()
def score(
    study: str = typer.Argument(..., help="Study name."),
    vlm: Optional[str] = typer.Option(None, help="VLM rater to score (default: the VLM with the "
                                      "most answers)."),
    max_attention_failure: float = typer.Option(
        MAX_ATTENTION_FAILURE, help="Leave out raters who failed more than this share of the "
        "attention checks they answered."),
    db: Optional[str] = typer.Option(None, help=DB_HELP),
    json_output: JsonOption = False,
) -> None:
    """Valid/invalid (deceptive, ambiguous) images, human accuracy, Table 4, Fleiss' kappa."""
    from robustscale.errors import RobustscaleError
    from robustscale.human_study.results import score_study

    try:
        result = score_study(_sessions(db), study, vlm, max_attention_failure)
    except RobustscaleError as e:
        raise RobustscaleError(str(e).replace("max_attention_failure", "--max-attention-failure")) from None
    if result["left_out"]:
        warn(f"{len(result['left_out'])} raters left out for failing attention checks: "
             + ", ".join(r["rater"] for r in result["left_out"]))
    if result["unrated"]:
        warn(f"{result['unrated']} of {result['images']} images have no human answer yet: Table 4 "
             "figures they could change are given as ranges")
    emit(result, json_output, _render_score)


@study_app.command("vlm-rate")
def vlm_rate_cmd(
    study: str = typer.Argument(..., help="Study name."),
    base_url: str = typer.Option(..., help="OpenAI-compatible API root, e.g. https://api.openai.com/v1."),
    model: str = typer.Option(..., help="Model name sent in the request."),
    name: Optional[str] = typer.Option(None, help="Rater name (default: the model name)."),
    retries: int = typer.Option(5, help="Retries per image on 429/5xx/connection errors."),
    backoff: float = typer.Option(1.0, help="First retry delay in seconds (doubles each retry)."),
    timeout: float = typer.Option(VLM_TIMEOUT, help="Seconds to wait for one reply."),
    max_tokens: int = typer.Option(VLM_MAX_TOKENS, help="max_tokens of the request (Fig. 18: 3200)."),
    temperature: float = typer.Option(VLM_TEMPERATURE, help="Sampling temperature (Fig. 18: 0)."),
    db: Optional[str] = typer.Option(None, help=DB_HELP),
    json_output: JsonOption = False,
) -> None:
    """Rate the adversarial images with a VLM (App. G.2's prompt and payload) as the 4th rater;
    resumable. Exits with an error when no reply could be parsed.

    The API key is read from $ROBUSTSCALE_VLM_API_KEY, else $OPENAI_API_KEY (none: no header)."""
    import os

    from robustscale.human_study.vlm import API_KEY_ENVS, vlm_rate

    key = next((os.environ[e] for e in API_KEY_ENVS if os.environ.get(e)), None)
    result = vlm_rate(_sessions(db), study, base_url, model, key, name, retries, backoff,
                      timeout=timeout, max_tokens=max_tokens, temperature=temperature,
                      progress=not json_output)
    if result["unparsed"]:
        warn(f"{result['unparsed']} replies did not end in '<class>, <confidence>' and were not "
             f"recorded (first: {result['unparsed_replies'][0][-120:]!r})")
    emit(result, json_output, lambda r: print(
        f"{r['rated']} images rated by {r['rater']} ({r['already_rated']} before, "
        f"{r['unparsed']} unparsed replies)"))


def register(app: typer.Typer) -> None:
    app.add_typer(study_app, name="study")
