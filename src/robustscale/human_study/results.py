"""A study's answers out and in: the CSV export and its re-import (also how studies run on other
platforms get this scoring), the arrays `scoring.score` reads, per-rater progress.

`export_answers`, `import_answers` and `score_study` open their own transaction from a session
factory (CLI, notebook); the admin pages call the others with the request's open `Session`.
"""

from __future__ import annotations

import csv
import io
import os
from pathlib import Path

import numpy as np
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from robustscale.errors import RobustscaleError
from robustscale.human_study.answers import new_rater
from robustscale.human_study.db import (CONFIDENCES, PHASES, Answer, Image, Rater, Reply, Study,
                                        get_study)
from robustscale.human_study.scoring import Ratings, score

EXPORT_COLUMNS = ("study", "rater", "kind", "position", "index", "phase", "label", "prediction",
                  "choice", "choice_name", "confidence", "seconds", "created", "reply")
IMPORT_REQUIRED = ("rater", "index", "phase", "choice", "confidence")
KINDS = ("human", "vlm")
# A cell starting with one of these is run as a formula by spreadsheets (OWASP "CSV injection");
# the export prefixes it with a quote, which the import removes again.
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def answer_rows(s: Session, study: Study) -> list[dict]:
    # image columns, not Image rows: an export must not read every PNG
    q = (select(Answer, Rater, Image.position, Image.index, Image.label, Image.prediction,
                Reply.text).join(Rater, Answer.rater_id == Rater.id)
         .join(Image, Answer.image_id == Image.id).outerjoin(Reply, Reply.answer_id == Answer.id)
         .where(Rater.study_id == study.id).order_by(Rater.id, Answer.id))
    return [{"study": study.name, "rater": r.name, "kind": r.kind, "position": position,
             "index": index, "phase": a.phase, "label": label, "prediction": prediction,
             "choice": a.choice, "choice_name": study.classes[a.choice],
             "confidence": "high" if a.high_confidence else "low", "seconds": a.seconds,
             "created": a.created.isoformat(), "reply": reply}
            for a, r, position, index, label, prediction, reply in s.execute(q)]


def _safe_cell(value):
    if isinstance(value, str) and value.startswith(FORMULA_START):
        return "'" + value
    return value


def _unsafe_cell(value: str) -> str:
    return value[1:] if value.startswith("'") and value[1:].startswith(FORMULA_START) else value


def answers_csv(rows: list[dict]) -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=EXPORT_COLUMNS, lineterminator="\n")
    w.writeheader()
    w.writerows({k: _safe_cell(v) for k, v in row.items()} for row in rows)
    return buf.getvalue()


def export_answers(sessions: sessionmaker[Session], study_name: str, out) -> int:
    """Write every answer of the study as CSV (atomically); returns the row count."""
    from robustscale.fileio import write_text

    with sessions() as s:
        rows = answer_rows(s, get_study(s, study_name))
    write_text(out, answers_csv(rows))
    return len(rows)


def import_answers(sessions: sessionmaker[Session], study_name: str,
                   path: str | os.PathLike) -> dict:
    """Add the answers of a CSV (the columns `export_answers` writes; at least rater, index,
    phase, choice, confidence) to an existing study, all or nothing.

    `index` is the test-set index of an image of the study; raters are created as needed, of
    kind `kind` (human when the column is absent). A human answer must not be there already."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as e:
        raise RobustscaleError(f"{path}: not a readable UTF-8 CSV file ({type(e).__name__})") from None
    reader = csv.DictReader(io.StringIO(text))
    missing = [c for c in IMPORT_REQUIRED if c not in (reader.fieldnames or [])]
    if missing:
        raise RobustscaleError(f"{path}: expected the columns {', '.join(IMPORT_REQUIRED)} "
                               f"(missing: {', '.join(missing)})")
    with sessions() as s:
        study = get_study(s, study_name)
        image_of = dict(s.execute(select(Image.index, Image.id)
                                  .where(Image.study_id == study.id)).all())
        raters = {r.name: r for r in s.scalars(select(Rater).where(Rater.study_id == study.id))}
        created, n = [], 0
        for line, row in enumerate(reader, start=2):
            where = f"{path}:{line}"
            name = _unsafe_cell(row["rater"] or "")
            kind = row.get("kind") or "human"
            if kind not in KINDS:
                raise RobustscaleError(f"{where}: kind must be human or vlm, got {kind!r}")
            if row["phase"] not in PHASES or row["confidence"] not in CONFIDENCES:
                raise RobustscaleError(f"{where}: phase must be adversarial|clean and confidence "
                                       f"low|high, got {row['phase']!r}, {row['confidence']!r}")
            try:
                index, choice = int(row["index"]), int(row["choice"])
                seconds = float(row["seconds"]) if row.get("seconds") else None
            except (TypeError, ValueError):
                raise RobustscaleError(f"{where}: index and choice must be integers, seconds a "
                                       "number or empty") from None
            if index not in image_of:
                raise RobustscaleError(f"{where}: index {index} is not an image of study "
                                       f"{study_name!r}")
            if not 0 <= choice < len(study.classes):
                raise RobustscaleError(f"{where}: choice must be a class index "
                                       f"0..{len(study.classes) - 1}")
            rater = raters.get(name)
            if rater is None:
                rater, _ = new_rater(s, study, name, kind)  # no link: its token is never shown
                raters[name] = rater
                created.append(name)
            elif rater.kind != kind:
                raise RobustscaleError(f"{where}: rater {name!r} is a {rater.kind} rater, the row "
                                       f"says {kind}")
            answer = Answer(rater_id=rater.id, image_id=image_of[index], phase=row["phase"],
                            choice=choice, high_confidence=row["confidence"] == "high",
                            seconds=seconds)
            s.add(answer)
            try:
                s.flush()
            except IntegrityError:
                raise RobustscaleError(f"{where}: rater {name!r} already answered image {index} "
                                       f"({row['phase']})") from None
            if row.get("reply"):
                s.add(Reply(answer_id=answer.id, text=row["reply"]))
            n += 1
        s.commit()
    return {"study": study_name, "answers": n, "raters_created": created}


def study_ratings(s: Session, study: Study, vlm: str | None = None) -> Ratings:
    """Arrays for scoring.score. Human raters without a single answer are left out; the VLM is
    the one named `vlm`, by default the VLM rater with the most answers (None when no VLM
    answered)."""
    images = list(s.execute(select(Image.id, Image.label, Image.prediction)
                            .where(Image.study_id == study.id).order_by(Image.position)))
    col = {row.id: j for j, row in enumerate(images)}
    counts = answer_counts(s, study)
    raters = list(s.scalars(select(Rater).where(Rater.study_id == study.id).order_by(Rater.id)))
    humans = [r for r in raters if r.kind == "human" and counts.get(r.id)]
    vlms = [r for r in raters if r.kind == "vlm"]
    if vlm is not None:
        chosen = next((r for r in vlms if r.name == vlm), None)
        if chosen is None:
            raise RobustscaleError(f"vlm {vlm!r}: no VLM rater of that name in study "
                                   f"{study.name!r} (VLM raters: "
                                   f"{', '.join(r.name for r in vlms) or 'none'})")
    else:
        # the paper's 4th rater is one VLM; a failed run must not displace a complete one
        chosen = max((r for r in vlms if counts.get(r.id)), key=lambda r: counts[r.id], default=None)
    n = len(images)
    choice = {p: np.full((len(humans), n), -1) for p in PHASES}
    high = {p: np.zeros((len(humans), n), bool) for p in PHASES}
    vlm_choice = np.full(n, -1)
    row_of = {r.id: i for i, r in enumerate(humans)}
    q = select(Answer.rater_id, Answer.image_id, Answer.phase, Answer.choice, Answer.high_confidence
               ).join(Rater, Answer.rater_id == Rater.id).where(Rater.study_id == study.id)
    for rid, iid, phase, c, h in s.execute(q):
        if rid in row_of:
            choice[phase][row_of[rid], col[iid]] = c
            high[phase][row_of[rid], col[iid]] = h
        elif chosen is not None and rid == chosen.id and phase == "adversarial":
            vlm_choice[col[iid]] = c
    preds = [row.prediction for row in images]
    return Ratings(labels=np.array([row.label for row in images]),
                   predictions=None if any(p is None for p in preds) else np.array(preds),
                   human_adversarial=choice["adversarial"], human_high=high["adversarial"],
                   human_clean=choice["clean"], vlm=None if chosen is None else vlm_choice,
                   n_total=study.n_total, n_robust=study.n_robust, n_classes=len(study.classes),
                   raters=[r.name for r in humans], vlm_name=None if chosen is None else chosen.name)


def score_study(sessions: sessionmaker[Session], study_name: str, vlm: str | None = None) -> dict:
    """`scoring.score` of the study's answers, with the study's name."""
    with sessions() as s:
        study = get_study(s, study_name)
        return {"study": study.name, **score(study_ratings(s, study, vlm))}


def answer_counts(s: Session, study: Study) -> dict[int, int]:
    """Answers per rater id (raters without answers absent)."""
    return dict(s.execute(select(Answer.rater_id, func.count()).join(Rater)
                          .where(Rater.study_id == study.id).group_by(Answer.rater_id)).all())


def progress(s: Session, study: Study) -> list[dict]:
    """Answers per rater against what they are assigned."""
    n_images = s.scalar(select(func.count()).select_from(Image).where(Image.study_id == study.id))
    counts = answer_counts(s, study)
    out = []
    for r in s.scalars(select(Rater).where(Rater.study_id == study.id).order_by(Rater.id)):
        assigned = n_images * (2 if r.kind == "human" else 1)
        done = counts.get(r.id, 0)
        out.append({"rater": r.name, "kind": r.kind, "answered": done, "assigned": assigned,
                    "fraction": done / assigned if assigned else 0.0})
    return out
