"""The paper's scoring of a human-validity study (§4.2, Table 4, App. G): pure numpy.

Choices are class indices with -1 for "no answer". Rater rows are humans; the VLM (GPT-4 in
the paper) is an optional further rater on the adversarial images. Real studies are uneven
(raters who stop early, images nobody rated yet): every figure follows `RULE`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

VALID_MIN_CORRECT = 2  # §4.2: valid if correctly labeled by 2/4 users ...
# ... or by 1 human user with high confidence (§4.2).


@dataclass
class Ratings:
    labels: np.ndarray  # (n,) true classes of the attacked images
    predictions: np.ndarray | None  # (n,) the model's (wrong) predictions on the adversarial images
    human_adversarial: np.ndarray  # (R, n) choices on adversarial images, -1 = missing
    human_high: np.ndarray  # (R, n) bool: high confidence on adversarial images
    human_clean: np.ndarray  # (R, n) choices on the clean versions
    vlm: np.ndarray | None  # (n,) the VLM's choices on adversarial images
    n_total: int  # test images attacked (10000 in the paper)
    n_robust: int  # of which the model still classified correctly (7371)
    n_classes: int = 10
    raters: list | None = None
    vlm_name: str | None = None
    left_out: list = dataclasses.field(default_factory=list)  # raters not scored, and why


# The rule `score` follows, printed with every score so that a reader knows what was counted.
RULE = ("Per image, the human raters who answered it count: the average human's correct count is "
        "the sum over images of the fraction of them that chose the true class, and human raters "
        "without any answer are left out. An image no human answered (adversarial phase) is "
        "'unrated', neither valid nor invalid; the Table 4 figures it could change are null "
        "until every image is rated, with their bounds under table4.bounds. Valid (§4.2): the "
        "true class chosen by >= 2 of the image's raters (humans and the VLM) or by one human with "
        "high confidence. Fleiss' kappa: each image with its own raters (Fleiss 1971 with "
        "unequal rater counts), over images with >= 2 answers; the adversarial kappa includes "
        "the VLM; null where undefined, with the reason under fleiss_kappa_undefined.")


def rated(r: Ratings) -> np.ndarray:
    """Images with at least one human answer on their adversarial version."""
    return (r.human_adversarial >= 0).any(0)


def validity(r: Ratings) -> np.ndarray:
    """Valid adversarial images: the true label chosen by >= 2 of the image's raters (humans +
    VLM), or by at least one human with high confidence (§4.2). Unrated images are not valid
    (and not invalid: see `rated`)."""
    correct = r.human_adversarial == r.labels
    n_correct = correct.sum(0) + (0 if r.vlm is None else (r.vlm == r.labels))
    return rated(r) & ((n_correct >= VALID_MIN_CORRECT) | (correct & r.human_high).any(0))


def deceptive(r: Ratings, invalid: np.ndarray) -> np.ndarray | None:
    """Invalid images where the model's prediction and a majority of the humans who answered
    agree on the same wrong class (§4.2); the other invalid images are ambiguous. None without
    the model's predictions."""
    if r.predictions is None:
        return None
    answered = (r.human_adversarial >= 0).sum(0)
    agree = (r.human_adversarial == r.predictions).sum(0)
    return invalid & (r.predictions != r.labels) & (2 * agree > answered)


def average_correct(choices: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Per image, the fraction of the raters who answered it that chose the true class (0 where
    nobody answered): the average human's score on that image."""
    answered = (choices >= 0).sum(0)
    right = (choices == labels).sum(0)
    return np.where(answered > 0, right / np.maximum(answered, 1), 0.0)


def fleiss_kappa(choices: np.ndarray, n_classes: int) -> float | None:
    """Fleiss' kappa of (raters, items) class choices (-1: no answer), each item with the raters
    who answered it (Fleiss 1971's statistic with unequal rater counts); items with fewer than 2
    answers are left out. None where it is undefined (`kappa_undefined` says why)."""
    terms = _kappa_terms(choices, n_classes)
    if isinstance(terms, str):
        return None
    p_bar, p_e = terms
    return float((p_bar - p_e) / (1 - p_e))


def kappa_undefined(choices: np.ndarray, n_classes: int) -> str | None:
    """Why `fleiss_kappa` is None for these choices, or None when it is defined."""
    terms = _kappa_terms(choices, n_classes)
    return terms if isinstance(terms, str) else None


def _kappa_terms(choices: np.ndarray, n_classes: int) -> tuple[float, float] | str:
    """(observed agreement, chance agreement), or the reason kappa is undefined."""
    choices = np.asarray(choices)
    if choices.ndim != 2 or choices.shape[1] == 0:
        return "no images"
    counts = np.stack([(choices == k).sum(0) for k in range(n_classes)], 1)  # (items, classes)
    n_i = counts.sum(1)
    counts, n_i = counts[n_i >= 2], n_i[n_i >= 2]
    if len(n_i) == 0:
        return "no image has 2 answers"
    p_item = (counts * (counts - 1)).sum(1) / (n_i * (n_i - 1))
    p_class = counts.sum(0) / n_i.sum()
    p_bar, p_e = p_item.mean(), (p_class ** 2).sum()
    if p_e >= 1:  # 0/0: every answer names the same class, agreement by chance is certain
        return "every answer names the same class (chance agreement is 1: 0/0)"
    return float(p_bar), float(p_e)


def _accuracy(choices: np.ndarray, labels: np.ndarray) -> float | None:
    answered = choices >= 0
    return float((choices == labels)[answered].mean()) if answered.any() else None


def table4(r: Ratings, valid: np.ndarray, invalid: np.ndarray, avg_correct: np.ndarray) -> dict:
    """Table 4: "All Data" divides by every attacked test image; "Valid Data" removes the invalid
    ones from the test set. The average human's count on the attacked images is added to the
    model's robust count (§4.1 assumes humans get the robust images right).

    Unrated images could be valid or invalid, right or wrong: figures they can change are None
    while any is unrated, and `bounds` holds [low, high] for every figure (equal when none is)."""
    R, T, u = r.n_robust, r.n_total, int((~rated(r)).sum())
    n_inv = int(invalid.sum())
    C, Cv = float(avg_correct.sum()), float(avg_correct[valid].sum())
    VT = T - n_inv  # test images left once the invalid ones are removed

    def ratio(a, b):
        return a / b if b else None

    # valid-data human figure with x of the u unrated images invalid and the rest right: the
    # ratio is monotone in x, so its extremes sit at x = 0 or x = u
    human_valid_hi = [v for v in (ratio(R + Cv + u, VT), ratio(R + Cv, VT - u)) if v is not None]
    bounds = {
        "model_all_data": [R / T, R / T],
        "model_valid_data": [ratio(R, VT), ratio(R, VT - u)],
        "human_all_data": [(R + C) / T, (R + C + u) / T],
        "human_valid_data": [ratio(R + Cv, VT), max(human_valid_hi, default=None)],
        # the same invalid images counted as failed attacks instead of removed
        "model_invalid_as_robust": [(R + n_inv) / T, (R + n_inv + u) / T],
    }
    out = {k: lo if lo == hi else None for k, (lo, hi) in bounds.items()}
    out["counts"] = {"robust": R, "total": T, "attacked": len(r.labels), "unrated": u,
                     "invalid": n_inv, "valid_total": VT, "mean_human_correct_all": C,
                     "mean_human_correct_valid": Cv}
    out["bounds"] = bounds
    return out


def score(r: Ratings) -> dict:
    """Counts and accuracies of §4 and Table 4 (all fractions in [0, 1]), by the rule `RULE`."""
    labels = r.labels
    is_rated = rated(r)
    valid = validity(r)
    invalid = is_rated & ~valid
    dec = deceptive(r, invalid)
    n_invalid = int(invalid.sum())
    avg_adv = average_correct(r.human_adversarial, labels)
    avg_clean = average_correct(r.human_clean, labels)
    clean_rated = (r.human_clean >= 0).any(0)
    names = r.raters or [f"rater{i}" for i in range(len(r.human_adversarial))]
    humans = [{"rater": name, "adversarial_accuracy": _accuracy(r.human_adversarial[i], labels),
               # Fig. 8: accuracy split by the rater's confidence
               "adversarial_accuracy_high": _accuracy(
                   np.where(r.human_high[i], r.human_adversarial[i], -1), labels),
               "adversarial_accuracy_low": _accuracy(
                   np.where(r.human_high[i], -1, r.human_adversarial[i]), labels),
               "clean_accuracy": _accuracy(r.human_clean[i], labels),
               "answered_adversarial": int((r.human_adversarial[i] >= 0).sum()),
               "answered_clean": int((r.human_clean[i] >= 0).sum())} for i, name in enumerate(names)]
    all_adv = r.human_adversarial if r.vlm is None else np.vstack([r.human_adversarial, r.vlm])
    return {
        "images": len(labels), "total": r.n_total, "robust": r.n_robust,
        "rated": int(is_rated.sum()), "unrated": int((~is_rated).sum()),
        "valid": int(valid.sum()), "invalid": n_invalid,
        "deceptive": None if dec is None else int(dec.sum()),
        "ambiguous": None if dec is None else int((invalid & ~dec).sum()),
        "deceptive_fraction_of_invalid": float(dec.sum() / n_invalid)
        if dec is not None and n_invalid else None,
        "human_adversarial_accuracy": float(avg_adv[is_rated].mean()) if is_rated.any() else None,
        "human_clean_accuracy": float(avg_clean[clean_rated].mean()) if clean_rated.any() else None,
        "humans": humans,
        "left_out": r.left_out,
        "vlm": None if r.vlm is None else {
            "rater": r.vlm_name, "adversarial_accuracy": _accuracy(r.vlm, labels),
            "answered": int((r.vlm >= 0).sum()), "correct": int((r.vlm == labels).sum()),
            "accuracy_all_data": (r.n_robust + int((r.vlm == labels).sum())) / r.n_total},
        "table4": table4(r, valid, invalid, avg_adv),
        "fleiss_kappa_adversarial": fleiss_kappa(all_adv, r.n_classes),
        "fleiss_kappa_clean": fleiss_kappa(r.human_clean, r.n_classes),
        "fleiss_kappa_undefined": {"adversarial": kappa_undefined(all_adv, r.n_classes),
                                   "clean": kappa_undefined(r.human_clean, r.n_classes)},
        "rule": RULE,
    }
