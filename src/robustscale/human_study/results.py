"""A study's answers out and in: the CSV export and its re-import (also how studies run on other
platforms get this scoring), the arrays `scoring.score` reads, per-rater progress.

`export_answers`, `import_answers` and `score_study` open their own transaction from a session
factory (CLI, notebook); the admin pages call the others with the request's open `Session`.
"""

from __future__ import annotations

import csv
import io
import math
import os
from pathlib import Path

import numpy as np
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from robustscale.errors import RobustscaleError
from robustscale.human_study.answers import answered_count, new_rater
from robustscale.human_study.config import MAX_ATTENTION_FAILURE
from robustscale.human_study.db import (
    CONFIDENCES,
    PHASES,
    Answer,
    Image,
    Rater,
    Reply,
    Study,
    get_study,
    lock_rater,
)
from robustscale.human_study.scoring import Ratings, score

EXPORT_COLUMNS = ("study", "rater", "kind", "external_id", "answer", "position", "index", "phase",
                  "attention", "label", "prediction", "choice", "choice_name", "confidence",
                  "seconds", "created", "reply")
IMPORT_REQUIRED = ("rater", "index", "phase", "choice", "confidence")
KINDS = ("human", "vlm")
# A cell starting with one of these is run as a formula by spreadsheets (OWASP "CSV injection");
# the export prefixes it with a quote, which the import removes again (from every text cell).
# `position` is the image's place in the study, `answer` the rater's n-th answer.
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def answer_rows(s: Session, study: Study) -> list[dict]:
    # image columns, not Image rows: an export must not read every PNG
    q = (select(Answer, Rater, Image.position, Image.index, Image.attention, Image.label,
                Image.prediction, Reply.text).join(Rater, Answer.rater_id == Rater.id)
         .join(Image, Answer.image_id == Image.id).outerjoin(Reply, Reply.answer_id == Answer.id)
         .where(Rater.study_id == study.id).order_by(Rater.id, Answer.position))
    return [{"study": study.name, "rater": r.name, "kind": r.kind, "external_id": r.external_id,
             "answer": a.position, "position": position, "index": index, "phase": a.phase,
             "attention": int(attention), "label": label, "prediction": prediction,
             "choice": a.choice, "choice_name": study.classes[a.choice],
             "confidence": "high" if a.high_confidence else "low", "seconds": a.seconds,
             "created": a.created.isoformat(), "reply": reply}
            for a, r, position, index, attention, label, prediction, reply in s.execute(q)]


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
    kind `kind` (human when the column is absent). An answer must not be there already. A
    rater's rows are appended after the answers they already have, in the file's order, with
    the rater locked against answers arriving from the web meanwhile."""
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
        created, n, next_position = [], 0, {}
        for line, row in enumerate(reader, start=2):
            where = f"{path}:{line}"
            name = _unsafe_cell(row["rater"] or "")
            external_id = _unsafe_cell(row.get("external_id") or "") or None
            kind = row.get("kind") or "human"
            if kind not in KINDS:
                raise RobustscaleError(f"{where}: kind must be human or vlm, got {kind!r}")
            if row["phase"] not in PHASES or row["confidence"] not in CONFIDENCES:
                raise RobustscaleError(f"{where}: phase must be adversarial|clean and confidence "
                                       f"low|high, got {row['phase']!r}, {row['confidence']!r}")
            try:
                index, choice = int(row["index"]), int(row["choice"])
                seconds = float(row["seconds"]) if row.get("seconds") else None
                if seconds is not None and not (math.isfinite(seconds) and seconds >= 0):
                    raise ValueError
            except (TypeError, ValueError):
                raise RobustscaleError(f"{where}: index and choice must be integers, seconds a "
                                       "finite number >= 0 or empty") from None
            if index not in image_of:
                raise RobustscaleError(f"{where}: index {index} is not an image of study "
                                       f"{study_name!r}")
            if not 0 <= choice < len(study.classes):
                raise RobustscaleError(f"{where}: choice must be a class index "
                                       f"0..{len(study.classes) - 1}")
            rater = raters.get(name)
            if rater is None:
                rater, _ = new_rater(s, study, name, kind)  # no link: its token is never shown
                rater.external_id = external_id
                raters[name] = rater
                created.append(name)
            elif rater.kind != kind:
                raise RobustscaleError(f"{where}: rater {name!r} is a {rater.kind} rater, the row "
                                       f"says {kind}")
            if rater.id not in next_position:  # appended after what the rater has, under lock
                lock_rater(s, rater.id)
                next_position[rater.id] = answered_count(s, rater.id)
            answer = Answer(rater_id=rater.id, image_id=image_of[index], phase=row["phase"],
                            position=next_position[rater.id], choice=choice,
                            high_confidence=row["confidence"] == "high", seconds=seconds)
            next_position[rater.id] += 1
            s.add(answer)
            try:
                s.flush()
            except IntegrityError:
                raise RobustscaleError(f"{where}: rater {name!r} already answered image {index} "
                                       f"({row['phase']})") from None
            if row.get("reply"):
                s.add(Reply(answer_id=answer.id, text=_unsafe_cell(row["reply"])))
            n += 1
        s.commit()
    return {"study": study_name, "answers": n, "raters_created": created}


def attention_failures(s: Session, study: Study) -> dict[int, tuple[int, int]]:
    """(attention checks failed, attention checks answered) per rater id that answered one."""
    out: dict[int, tuple[int, int]] = {}
    q = (select(Answer.rater_id, Answer.choice, Image.label).join(Image, Answer.image_id == Image.id)
         .where(Image.study_id == study.id, Image.attention))
    for rid, choice, label in s.execute(q):
        failed, answered = out.get(rid, (0, 0))
        out[rid] = (failed + (choice != label), answered + 1)
    return out


def study_ratings(s: Session, study: Study, vlm: str | None = None,
                  max_attention_failure: float = MAX_ATTENTION_FAILURE) -> Ratings:
    """Arrays for scoring.score, over the study's attacked images (attention checks are not
    scored). Human raters without a single answer are left out, and so are raters who failed
    more than `max_attention_failure` of the attention checks they answered (listed with the
    reason in `Ratings.left_out`); the VLM is the one named `vlm`, by default the VLM rater with
    the most answers (None when no VLM answered)."""
    if not 0 <= max_attention_failure <= 1:
        raise RobustscaleError(f"max_attention_failure {max_attention_failure}: expected a share "
                               "in [0, 1]")
    images = list(s.execute(select(Image.id, Image.label, Image.prediction)
                            .where(Image.study_id == study.id, ~Image.attention)
                            .order_by(Image.position)))
    col = {row.id: j for j, row in enumerate(images)}
    counts = answer_counts(s, study)
    raters = list(s.scalars(select(Rater).where(Rater.study_id == study.id).order_by(Rater.id)))
    checks, left_out = attention_failures(s, study), []
    for r in raters:
        failed, answered = checks.get(r.id, (0, 0))
        if r.kind == "human" and answered and failed > max_attention_failure * answered:
            left_out.append({"rater": r.name, "external_id": r.external_id,
                             "reason": f"failed {failed} of {answered} attention checks (more "
                                       f"than {100 * max_attention_failure:g}%)"})
    gone = {d["rater"] for d in left_out}
    humans = [r for r in raters if r.kind == "human" and counts.get(r.id) and r.name not in gone]
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
        if iid not in col:  # an attention check
            continue
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
                   raters=[r.name for r in humans], vlm_name=None if chosen is None else chosen.name,
                   left_out=left_out)


def score_study(sessions: sessionmaker[Session], study_name: str, vlm: str | None = None,
                max_attention_failure: float = MAX_ATTENTION_FAILURE) -> dict:
    """`scoring.score` of the study's answers, with the study's name."""
    with sessions() as s:
        study = get_study(s, study_name)
        return {"study": study.name,
                **score(study_ratings(s, study, vlm, max_attention_failure))}


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
