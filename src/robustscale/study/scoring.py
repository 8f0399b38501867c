"""The paper's scoring of a human-validity study (§4.2, Table 4, App. G): pure numpy.

Choices are class indices with -1 for "no answer". Rater rows are humans; the VLM (GPT-4 in
the paper) is an optional fourth rater on the adversarial images.
"""

from __future__ import annotations

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


def validity(r: Ratings) -> np.ndarray:
    """Valid adversarial images: the true label chosen by >= 2 of the 4 raters (humans + VLM),
    or by at least one human with high confidence (§4.2)."""
    correct = r.human_adversarial == r.labels
    n_correct = correct.sum(0) + (0 if r.vlm is None else (r.vlm == r.labels))
    return (n_correct >= VALID_MIN_CORRECT) | (correct & r.human_high).any(0)


def deceptive(r: Ratings, valid: np.ndarray) -> np.ndarray:
    """Invalid images where the model's prediction and a majority of the humans agree on the
    same wrong class (§4.2); the other invalid images are ambiguous."""
    if r.predictions is None:
        return np.zeros_like(valid)
    answered = (r.human_adversarial >= 0).sum(0)
    agree = (r.human_adversarial == r.predictions).sum(0)
    return ~valid & (r.predictions != r.labels) & (2 * agree > answered)


def fleiss_kappa(choices: np.ndarray, n_classes: int) -> float | None:
    """Fleiss' kappa of (raters, items) class choices over the items every rater answered
    (None with fewer than 2 raters or no such item)."""
    choices = np.asarray(choices)
    full = (choices >= 0).all(0)
    c = choices[:, full]
    m, n = c.shape
    if m < 2 or n == 0:
        return None
    counts = np.stack([(c == k).sum(0) for k in range(n_classes)], 1)  # (items, classes)
    p_item = ((counts * (counts - 1)).sum(1)) / (m * (m - 1))
    p_class = counts.sum(0) / (n * m)
    p_bar, p_e = p_item.mean(), (p_class ** 2).sum()
    return float((p_bar - p_e) / (1 - p_e)) if p_e < 1 else 1.0


def _accuracy(choices: np.ndarray, labels: np.ndarray) -> float | None:
    answered = choices >= 0
    return float((choices == labels)[answered].mean()) if answered.any() else None


def score(r: Ratings) -> dict:
    """Counts and accuracies of §4 and Table 4 (all fractions in [0, 1]).

    Table 4: "All Data" divides by every attacked test image; "Valid Data" removes the invalid
    ones from the test set. An average human's count on the attacked images is added to the
    model's robust count (§4.1 assumes humans get the robust images right)."""
    labels = r.labels
    n = len(labels)
    valid = validity(r)
    dec = deceptive(r, valid)
    n_invalid = int((~valid).sum())
    n_valid_total = r.n_total - n_invalid
    correct = r.human_adversarial == labels
    mean_correct_all = float(correct.sum(1).mean()) if len(correct) else 0.0
    mean_correct_valid = float(correct[:, valid].sum(1).mean()) if len(correct) else 0.0
    names = r.raters or [f"rater{i}" for i in range(len(correct))]
    humans = [{"rater": name, "adversarial_accuracy": _accuracy(r.human_adversarial[i], labels),
               # Fig. 8: accuracy split by the rater's confidence
               "adversarial_accuracy_high": _accuracy(
                   np.where(r.human_high[i], r.human_adversarial[i], -1), labels),
               "adversarial_accuracy_low": _accuracy(
                   np.where(r.human_high[i], -1, r.human_adversarial[i]), labels),
               "clean_accuracy": _accuracy(r.human_clean[i], labels),
               "answered_adversarial": int((r.human_adversarial[i] >= 0).sum()),
               "answered_clean": int((r.human_clean[i] >= 0).sum())} for i, name in enumerate(names)]
    adv_acc = [h["adversarial_accuracy"] for h in humans if h["adversarial_accuracy"] is not None]
    clean_acc = [h["clean_accuracy"] for h in humans if h["clean_accuracy"] is not None]
    all_adv = r.human_adversarial if r.vlm is None else np.vstack([r.human_adversarial, r.vlm])
    out = {
        "images": n, "total": r.n_total, "robust": r.n_robust,
        "valid": int(valid.sum()), "invalid": n_invalid,
        "deceptive": int(dec.sum()), "ambiguous": int((~valid & ~dec).sum()),
        "deceptive_fraction_of_invalid": float(dec.sum() / n_invalid) if n_invalid else None,
        "human_adversarial_accuracy": float(np.mean(adv_acc)) if adv_acc else None,
        "human_clean_accuracy": float(np.mean(clean_acc)) if clean_acc else None,
        "humans": humans,
        "vlm": None if r.vlm is None else {
            "rater": r.vlm_name, "adversarial_accuracy": _accuracy(r.vlm, labels),
            "correct": int((r.vlm == labels).sum()),
            "accuracy_all_data": (r.n_robust + int((r.vlm == labels).sum())) / r.n_total},
        "table4": {
            "model_all_data": r.n_robust / r.n_total,
            "model_valid_data": r.n_robust / n_valid_total if n_valid_total else None,
            "human_all_data": (r.n_robust + mean_correct_all) / r.n_total,
            "human_valid_data": (r.n_robust + mean_correct_valid) / n_valid_total
            if n_valid_total else None,
            # The same invalid images counted as failed attacks instead of removed:
            "model_invalid_as_robust": (r.n_robust + n_invalid) / r.n_total,
            "counts": {"robust": r.n_robust, "total": r.n_total, "attacked": n,
                       "invalid": n_invalid, "valid_total": n_valid_total,
                       "mean_human_correct_all": mean_correct_all,
                       "mean_human_correct_valid": mean_correct_valid},
        },
        "fleiss_kappa_adversarial": fleiss_kappa(all_adv, r.n_classes),
        "fleiss_kappa_clean": fleiss_kappa(r.human_clean, r.n_classes),
    }
    return out
