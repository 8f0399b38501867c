"""The public quiz: 25 of the study's adversarial images; the visitor's score beside the
model's and the study's raters' on the same images."""

from __future__ import annotations

import zlib

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from robustscale.study.db import Answer, Image, Rater, Study

QUIZ_SIZE = 25  # the paper's quiz format: 25 adversarial images


def quiz_images(s: Session, study: Study, size: int = QUIZ_SIZE) -> list[Image]:
    """A fixed sample per study (seeded by its name), so every visitor gets the same quiz."""
    images = list(s.scalars(select(Image).where(Image.study_id == study.id)
                            .order_by(Image.position)))
    rng = np.random.default_rng(zlib.crc32(study.name.encode()))
    pick = np.sort(rng.choice(len(images), size=min(size, len(images)), replace=False))
    return [images[i] for i in pick]


def quiz_score(s: Session, study: Study, answers: list[int], size: int = QUIZ_SIZE) -> dict:
    """Scores on the quiz's images: the visitor, the model, the mean human rater, the VLM."""
    images = quiz_images(s, study, size)
    if len(answers) != len(images):
        raise ValueError(f"expected {len(images)} answers, got {len(answers)}")
    labels = {im.id: im.label for im in images}
    visitor = sum(a == im.label for a, im in zip(answers, images))
    model = sum(im.prediction == im.label for im in images if im.prediction is not None)
    per_rater: dict[tuple[int, str], list[bool]] = {}
    q = (select(Answer.rater_id, Rater.kind, Answer.image_id, Answer.choice)
         .join(Rater, Answer.rater_id == Rater.id)
         .where(Answer.phase == "adversarial", Answer.image_id.in_(list(labels))))
    for rid, kind, iid, choice in s.execute(q):
        per_rater.setdefault((rid, kind), []).append(choice == labels[iid])
    humans = [np.mean(v) * len(images) for (_, kind), v in per_rater.items() if kind == "human"]
    vlm = [np.mean(v) * len(images) for (_, kind), v in per_rater.items() if kind == "vlm"]
    return {"n": len(images), "visitor": int(visitor),
            "model": int(model) if any(im.prediction is not None for im in images) else None,
            "humans": float(np.mean(humans)) if humans else None, "n_humans": len(humans),
            "vlm": float(vlm[0]) if vlm else None}
