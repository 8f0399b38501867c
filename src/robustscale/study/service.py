"""Library of the study: import images, add raters, take answers, export and score.

Every function takes a SQLAlchemy session factory, so the CLI, the web app and a notebook
call the same code. Nothing is written unless the whole operation succeeds.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import hmac
import io
import os
import secrets
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from sqlalchemy import func, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from robustscale.errors import RobustscaleError
from robustscale.study.db import CONFIDENCES, PHASES, Answer, Image, Rater, Study, get_study, utcnow

# §4 studies CIFAR-10; npz files without a `classes` array are taken to use its classes.
CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship",
                   "truck")
BATCH_SIZE = 100  # App. G.1: users classified images in batches of 100
N_RATERS = 3  # §4.1: three human users


# ---------------------------------------------------------------- import

@dataclass
class ImageSet:
    images: np.ndarray  # uint8 (N, H, W, C)
    labels: np.ndarray | None
    predictions: np.ndarray | None
    indices: np.ndarray | None
    classes: tuple[str, ...] | None


def read_image_set(path: str | os.PathLike, which: str) -> ImageSet:
    """An npz with `images` (uint8 NHWC or float in [0, 1]) and `labels`, or a `robustscale
    evaluate` output folder (its `<which>.npz`). Raises RobustscaleError naming the file."""
    path = Path(path)
    if path.is_dir():
        path = path / f"{which}.npz"
    if not path.exists():
        raise RobustscaleError(f"{path}: no such file (expected an .npz or an evaluate --out folder)")
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as e:
        raise RobustscaleError(f"{path}: not a readable .npz file ({type(e).__name__})") from None
    if "images" not in arrays:
        raise RobustscaleError(f"{path}: expected an array named 'images'")
    images = _as_uint8_nhwc(arrays["images"], path)
    n = len(images)
    out = {}
    for key in ("labels", "predictions", "indices"):
        if key in arrays:
            a = arrays[key]
            if a.shape != (n,) or not np.issubdtype(a.dtype, np.integer):
                raise RobustscaleError(f"{path}: '{key}' must be {n} integers (one per image), "
                                       f"got shape {a.shape} dtype {a.dtype}")
            out[key] = a.astype(np.int64)
    classes = tuple(str(c) for c in arrays["classes"]) if "classes" in arrays else None
    return ImageSet(images, out.get("labels"), out.get("predictions"), out.get("indices"), classes)


def _as_uint8_nhwc(images: np.ndarray, path: Path) -> np.ndarray:
    if images.ndim == 3:
        images = images[..., None]
    if images.ndim != 4 or images.shape[-1] not in (1, 3) or len(images) == 0:
        raise RobustscaleError(f"{path}: 'images' must be (N, H, W, 1|3) with N > 0, "
                               f"got shape {images.shape}")
    if images.dtype == np.uint8:
        return images
    if np.issubdtype(images.dtype, np.floating):
        if not np.isfinite(images).all() or images.min() < 0 or images.max() > 1:
            raise RobustscaleError(f"{path}: float 'images' must lie in [0, 1]")
        return np.round(images * 255).astype(np.uint8)
    raise RobustscaleError(f"{path}: 'images' must be uint8 or float, got {images.dtype}")


def png_bytes(image: np.ndarray) -> bytes:
    from PIL import Image as PILImage

    buf = io.BytesIO()
    PILImage.fromarray(image[..., 0] if image.shape[-1] == 1 else image).save(buf, format="PNG")
    return buf.getvalue()


def _read_predictions(path: str | os.PathLike) -> np.ndarray:
    path = Path(path)
    try:
        a = np.load(path, allow_pickle=False)
        if isinstance(a, np.lib.npyio.NpzFile):
            with a:
                if "predictions" not in a.files:
                    raise RobustscaleError(f"{path}: expected an array named 'predictions'")
                a = a["predictions"]
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as e:
        raise RobustscaleError(f"{path}: not a readable .npy/.npz file ({type(e).__name__})") from None
    if a.ndim != 1 or not np.issubdtype(a.dtype, np.integer):
        raise RobustscaleError(f"{path}: predictions must be a 1-d integer array")
    return a.astype(np.int64)


def create_study(sessions: sessionmaker[Session], name: str, adversarial, clean,
                 predictions=None, batch_size: int = BATCH_SIZE, raters: int = N_RATERS,
                 total: int | None = None) -> dict:
    """Import the adversarial images and their clean versions as study `name`.

    Images the model still classifies correctly (prediction == label) are not attack successes:
    they count as robust and are not shown to raters (§4 studies the 2629 successes only).
    `total`: test images the attack ran on (default: the images given), so that Table 4's
    rescoring knows the robust count when the files hold only the successes.
    """
    if not name or len(name) > 128 or not all(c.isalnum() or c in "-_." for c in name):
        raise RobustscaleError(f"--name {name!r}: expected 1-128 letters, digits, '-', '_' or '.'")
    if batch_size < 1 or raters < 1:
        raise RobustscaleError("--batch-size and --raters: expected positive integers")
    adv = read_image_set(adversarial, "adversarial")
    cln = read_image_set(clean, "clean")
    n = len(adv.images)
    if len(cln.images) != n or cln.images.shape != adv.images.shape:
        raise RobustscaleError(f"{clean}: expected {n} clean images of shape {adv.images.shape[1:]} "
                               f"(one per adversarial image), got {cln.images.shape}")
    labels = adv.labels if adv.labels is not None else cln.labels
    if labels is None:
        raise RobustscaleError(f"{adversarial}: expected an array named 'labels'")
    if cln.labels is not None and not np.array_equal(cln.labels, labels):
        raise RobustscaleError(f"{clean}: 'labels' differ from those of {adversarial}")
    preds = _read_predictions(predictions) if predictions is not None else adv.predictions
    if preds is not None and preds.shape != (n,):
        raise RobustscaleError(f"{predictions}: expected {n} predictions (one per image), "
                               f"got {preds.shape[0]}")
    classes = adv.classes or cln.classes or CIFAR10_CLASSES
    k = len(classes)
    for what, a in (("labels", labels), ("predictions", preds)):
        if a is not None and ((a < 0) | (a >= k)).any():
            raise RobustscaleError(f"{adversarial}: {what} must lie in 0..{k - 1} ({k} classes)")
    indices = adv.indices if adv.indices is not None else np.arange(n)
    keep = np.ones(n, bool) if preds is None else preds != labels
    n_total = n if total is None else int(total)
    n_robust = n_total - int(keep.sum())
    if n_robust < 0:
        raise RobustscaleError(f"--total {total}: fewer than the {int(keep.sum())} attacked images")
    if not keep.any():
        raise RobustscaleError(f"{adversarial}: no successful attack (every prediction is correct)")
    with sessions() as s:
        if s.scalar(select(Study).where(Study.name == name)) is not None:
            raise RobustscaleError(f"--name {name!r}: a study of that name already exists")
        study = Study(name=name, classes=list(classes), batch_size=batch_size, n_raters=raters,
                      n_total=n_total, n_robust=n_robust)
        s.add(study)
        s.flush()
        for pos, i in enumerate(np.flatnonzero(keep)):
            s.add(Image(study_id=study.id, position=pos, index=int(indices[i]), label=int(labels[i]),
                        prediction=None if preds is None else int(preds[i]),
                        adversarial_png=png_bytes(adv.images[i]), clean_png=png_bytes(cln.images[i])))
        s.commit()
        return {"study": name, "images": int(keep.sum()), "robust": n_robust, "total": n_total,
                "batches": -(-int(keep.sum()) // batch_size), "classes": list(classes)}


# ---------------------------------------------------------------- raters

def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def add_rater(sessions: sessionmaker[Session], study_name: str, rater_name: str,
              kind: str = "human", days: float | None = None) -> tuple[Rater, str]:
    """A new rater and their token `<id>.<secret>`; only the secret's hash is stored."""
    if not rater_name or len(rater_name) > 128:
        raise RobustscaleError(f"rater name {rater_name!r}: expected 1-128 characters")
    secret = secrets.token_urlsafe(24)  # 192 random bits
    with sessions() as s:
        study = get_study(s, study_name)
        if s.scalar(select(Rater).where(Rater.study_id == study.id, Rater.name == rater_name)):
            raise RobustscaleError(f"rater {rater_name!r}: already in study {study_name!r}")
        expires = utcnow() + dt.timedelta(days=days) if days else None
        rater = Rater(study_id=study.id, name=rater_name, kind=kind, token_hash=hash_secret(secret),
                      expires=expires)
        s.add(rater)
        s.commit()
        return rater, f"{rater.id}.{secret}"


def rater_for_token(s: Session, token: str) -> Rater | None:
    """The rater whose token this is, compared in constant time; None if wrong or expired."""
    rater_id, _, secret = token.partition(".")
    if not rater_id.isdigit() or not secret or len(token) > 200:
        return None
    rater = s.get(Rater, int(rater_id))
    # Compare against a dummy hash when the id is unknown, so timing says nothing about ids.
    expected = rater.token_hash if rater is not None else "0" * 64
    if not hmac.compare_digest(hash_secret(secret), expected) or rater is None:
        return None
    if rater.expires is not None and rater.expires < utcnow():
        return None
    return rater


def rater_sequence(image_ids: list[int], batch_size: int) -> list[tuple[int, str]]:
    """The order a human rater sees: per batch, its adversarial images, then their clean versions
    (§4.1: clean images were classified after the adversarial ones)."""
    seq = []
    for b in range(0, len(image_ids), batch_size):
        batch = image_ids[b:b + batch_size]
        seq += [(i, "adversarial") for i in batch] + [(i, "clean") for i in batch]
    return seq


def study_image_ids(s: Session, study_id: int) -> list[int]:
    return list(s.scalars(select(Image.id).where(Image.study_id == study_id).order_by(Image.position)))


def answered_count(s: Session, rater_id: int) -> int:
    return s.scalar(select(func.count()).select_from(Answer).where(Answer.rater_id == rater_id))


class AnswerRejected(Exception):
    """An answer the study must not store; `status` is the HTTP status to reply with."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


def record_answer(s: Session, rater: Rater, sequence: list[tuple[int, str]], image_id: int,
                  phase: str, choice: int, confidence: str, n_classes: int,
                  seconds: float | None) -> int:
    """Store one human answer, which must be the rater's next item; returns the new count.

    Out-of-assignment, out-of-order, duplicate and replayed answers raise AnswerRejected; the
    unique constraint settles two concurrent copies of the same answer."""
    if phase not in PHASES or confidence not in CONFIDENCES:
        raise AnswerRejected(422, "phase must be adversarial|clean and confidence low|high")
    if not 0 <= choice < n_classes:
        raise AnswerRejected(422, f"choice must be a class index 0..{n_classes - 1}")
    done = answered_count(s, rater.id)
    if (image_id, phase) not in set(sequence):
        raise AnswerRejected(403, "image not in this rater's assignment")
    if done >= len(sequence) or sequence[done] != (image_id, phase):
        raise AnswerRejected(409, "duplicate or out-of-order answer")
    try:
        s.execute(insert(Answer).values(rater_id=rater.id, image_id=image_id, phase=phase,
                                        choice=choice, high_confidence=confidence == "high",
                                        seconds=seconds))
        s.commit()
    except IntegrityError:
        s.rollback()
        raise AnswerRejected(409, "duplicate answer") from None
    return done + 1


# ---------------------------------------------------------------- export and scoring

EXPORT_COLUMNS = ("study", "rater", "kind", "position", "index", "phase", "label", "prediction",
                  "choice", "choice_name", "confidence", "seconds", "created")


def answer_rows(s: Session, study: Study) -> list[dict]:
    q = (select(Answer, Rater, Image).join(Rater, Answer.rater_id == Rater.id)
         .join(Image, Answer.image_id == Image.id).where(Rater.study_id == study.id)
         .order_by(Rater.id, Answer.id))
    rows = []
    for a, r, im in s.execute(q):
        rows.append({"study": study.name, "rater": r.name, "kind": r.kind, "position": im.position,
                     "index": im.index, "phase": a.phase, "label": im.label,
                     "prediction": im.prediction, "choice": a.choice,
                     "choice_name": study.classes[a.choice],
                     "confidence": "high" if a.high_confidence else "low", "seconds": a.seconds,
                     "created": a.created.isoformat()})
    return rows


def answers_csv(rows: list[dict]) -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=EXPORT_COLUMNS, lineterminator="\n")
    w.writeheader()
    w.writerows(rows)
    return buf.getvalue()


def export_answers(sessions: sessionmaker[Session], study_name: str, out) -> int:
    """Write every answer of the study as CSV (atomically); returns the row count."""
    from robustscale.fileio import write_text

    with sessions() as s:
        rows = answer_rows(s, get_study(s, study_name))
    write_text(out, answers_csv(rows))
    return len(rows)


def study_ratings(s: Session, study: Study):
    """Arrays for scoring.score: labels, predictions, human choices/confidence per phase, VLM."""
    from robustscale.study.scoring import Ratings

    images = list(s.execute(select(Image.id, Image.label, Image.prediction)
                            .where(Image.study_id == study.id).order_by(Image.position)))
    col = {row.id: j for j, row in enumerate(images)}
    raters = list(s.scalars(select(Rater).where(Rater.study_id == study.id).order_by(Rater.id)))
    humans = [r for r in raters if r.kind == "human"]
    vlms = [r for r in raters if r.kind == "vlm"]
    n = len(images)
    choice = {p: np.full((len(humans), n), -1) for p in PHASES}
    high = {p: np.zeros((len(humans), n), bool) for p in PHASES}
    vlm = np.full(n, -1)
    row_of = {r.id: i for i, r in enumerate(humans)}
    vlm_id = vlms[0].id if vlms else None  # the paper's 4th rater is one VLM
    q = select(Answer.rater_id, Answer.image_id, Answer.phase, Answer.choice, Answer.high_confidence
               ).join(Rater, Answer.rater_id == Rater.id).where(Rater.study_id == study.id)
    for rid, iid, phase, c, h in s.execute(q):
        if rid in row_of:
            choice[phase][row_of[rid], col[iid]] = c
            high[phase][row_of[rid], col[iid]] = h
        elif rid == vlm_id and phase == "adversarial":
            vlm[col[iid]] = c
    preds = [row.prediction for row in images]
    return Ratings(labels=np.array([row.label for row in images]),
                   predictions=None if any(p is None for p in preds) else np.array(preds),
                   human_adversarial=choice["adversarial"], human_high=high["adversarial"],
                   human_clean=choice["clean"], vlm=vlm if vlms else None,
                   n_total=study.n_total, n_robust=study.n_robust, n_classes=len(study.classes),
                   raters=[r.name for r in humans], vlm_name=vlms[0].name if vlms else None)


def score_study_by_name(sessions: sessionmaker[Session], study_name: str) -> dict:
    from robustscale.study.scoring import score

    with sessions() as s:
        study = get_study(s, study_name)
        return {"study": study.name, **score(study_ratings(s, study))}


def progress(s: Session, study: Study) -> list[dict]:
    """Answers per rater against what they are assigned."""
    n_images = s.scalar(select(func.count()).select_from(Image).where(Image.study_id == study.id))
    counts = dict(s.execute(select(Answer.rater_id, func.count()).join(Rater)
                            .where(Rater.study_id == study.id).group_by(Answer.rater_id)).all())
    out = []
    for r in s.scalars(select(Rater).where(Rater.study_id == study.id).order_by(Rater.id)):
        assigned = n_images * (2 if r.kind == "human" else 1)
        done = counts.get(r.id, 0)
        out.append({"rater": r.name, "kind": r.kind, "answered": done, "assigned": assigned,
                    "fraction": done / assigned if assigned else 0.0})
    return out
