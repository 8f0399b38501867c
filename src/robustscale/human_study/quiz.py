"""The public quiz: 25 of the study's adversarial images; the visitor's score beside the
model's and the study's raters' on the same images.

The 25 images are drawn once per study (seeded by its name, so every visitor and every server
process gets the same quiz) from image ids alone, and kept in memory by the app: a quiz request
reads at most one PNG.
"""

from __future__ import annotations

import dataclasses
import zlib

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from robustscale.human_study.config import QUIZ_SIZE
from robustscale.human_study.db import Answer, Image, Rater, Study, get_study


@dataclasses.dataclass(frozen=True)
class Quiz:
    study: str
    classes: tuple[str, ...]
    image_ids: tuple[int, ...]  # in quiz order
    labels: tuple[int, ...]
    predictions: tuple[int | None, ...]


def make_quiz(s: Session, study: Study, size: int = QUIZ_SIZE) -> Quiz:
    """The study's quiz: `size` images (all of them when the study has fewer)."""
    rows = list(s.execute(select(Image.id, Image.label, Image.prediction)
                          .where(Image.study_id == study.id, ~Image.attention)
                          .order_by(Image.position)))
    rng = np.random.default_rng(zlib.crc32(study.name.encode()))
    pick = np.sort(rng.choice(len(rows), size=min(size, len(rows)), replace=False))
    chosen = [rows[i] for i in pick]
    return Quiz(study.name, tuple(study.classes), tuple(r.id for r in chosen),
                tuple(r.label for r in chosen), tuple(r.prediction for r in chosen))


class QuizCache:
    """Quizzes by study name, built on first use (a study's images never change)."""

    def __init__(self, size: int = QUIZ_SIZE):
        self.size = size
        self._quizzes: dict[str, Quiz] = {}

    def get(self, s: Session, name: str) -> Quiz:
        quiz = self._quizzes.get(name)
        if quiz is None:  # two threads may both build it: same result, no lock needed
            quiz = self._quizzes[name] = make_quiz(s, get_study(s, name), self.size)
        return quiz


def quiz_png(s: Session, quiz: Quiz, k: int) -> bytes:
    return s.scalar(select(Image.adversarial_png).where(Image.id == quiz.image_ids[k]))


def quiz_score(s: Session, quiz: Quiz, answers: list[int]) -> dict:
    """Scores on the quiz's images: the visitor, the model, the mean human rater, the VLM."""
    n = len(quiz.image_ids)
    if len(answers) != n:
        raise ValueError(f"expected {n} answers, got {len(answers)}")
    labels = dict(zip(quiz.image_ids, quiz.labels))
    visitor = sum(a == label for a, label in zip(answers, quiz.labels))
    known = [(p, label) for p, label in zip(quiz.predictions, quiz.labels) if p is not None]
    per_rater: dict[tuple[int, str], list[bool]] = {}
    q = (select(Answer.rater_id, Rater.kind, Answer.image_id, Answer.choice)
         .join(Rater, Answer.rater_id == Rater.id)
         .where(Answer.phase == "adversarial", Answer.image_id.in_(quiz.image_ids)))
    for rid, kind, iid, choice in s.execute(q):
        per_rater.setdefault((rid, kind), []).append(choice == labels[iid])
    humans = [np.mean(v) * n for (_, kind), v in per_rater.items() if kind == "human"]
    # as in the study's score: the VLM with the most answers
    vlm = max((v for (_, kind), v in per_rater.items() if kind == "vlm"), key=len, default=None)
    return {"n": n, "visitor": int(visitor),
            "model": sum(p == label for p, label in known) if known else None,
            "humans": float(np.mean(humans)) if humans else None, "n_humans": len(humans),
            "vlm": None if vlm is None else float(np.mean(vlm) * n)}
