"""The VLM rater of App. G.2: each adversarial image with the paper's prompt (Fig. 17) to an
OpenAI-compatible chat-completions endpoint; the reply's final 'class, confidence' is recorded
as the study's fourth rater. Resumable: images it already answered are skipped."""

from __future__ import annotations

import base64
import re
import time
from typing import Callable

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from robustscale.errors import RobustscaleError
from robustscale.study.db import Answer, Image, Rater, get_study
from robustscale.study.service import CIFAR10_CLASSES, add_rater

# Fig. 17, verbatim (the paper's class list carries hints that separate automobile from truck).
CIFAR10_PROMPT = (
    "I will give you an image that contains one of 10 classes. "
    "The 10 classes are [airplane, automobile (but not truck or pickup truck), bird, cat, deer, "
    "dog, frog, horse, ship, and truck (but not pickup truck)]. "
    "Your reply to the image will tell me which of the 10 classes the image contains. "
    "Feel free to reason about the contents of the image, but the final two words of your "
    "response must be in the following format: '{class}, {confidence}'. "
    "'class' must be one of the 10 classes. 'confidence' must be 'low' or 'higher' -- only say "
    "'low' if you think it is unlikely that you have identified the correct class.")
MAX_TOKENS = 300  # room to "reason about the contents" before the final two words
API_KEY_ENVS = ("ROBUSTSCALE_VLM_API_KEY", "OPENAI_API_KEY")


def prompt_for(classes: list[str]) -> str:
    """Fig. 17's prompt; for another class list the same words with that list."""
    if tuple(classes) == CIFAR10_CLASSES:
        return CIFAR10_PROMPT
    k = len(classes)
    listed = ", ".join(classes[:-1]) + f", and {classes[-1]}"
    return CIFAR10_PROMPT.replace("10 classes", f"{k} classes").replace(
        "[airplane, automobile (but not truck or pickup truck), bird, cat, deer, dog, frog, horse, "
        "ship, and truck (but not pickup truck)]", f"[{listed}]")


def parse_reply(text: str, classes: list[str]) -> tuple[int, bool] | None:
    """(class index, high confidence) from the reply's final 'class, confidence', else None."""
    lower = text.lower()
    conf = list(re.finditer(r"\b(low|higher|high)\b", lower))
    if not conf:
        return None
    end = conf[-1].start()
    best, best_pos = None, -1
    for k, name in enumerate(classes):
        for m in re.finditer(r"(?<![a-z])" + re.escape(name.lower()) + r"(?![a-z])", lower[:end]):
            if m.end() > best_pos:
                best, best_pos = k, m.end()
    if best is None or lower[best_pos:end].strip(" ,'\"*`:.-\u2019\u2018") != "":
        return None  # the class must be directly followed by the confidence word
    return best, conf[-1].group(1) != "low"


def chat_payload(model: str, prompt: str, png: bytes) -> dict:
    url = "data:image/png;base64," + base64.b64encode(png).decode()
    return {"model": model, "max_tokens": MAX_TOKENS, "messages": [{"role": "user", "content": [
        {"type": "text", "text": prompt}, {"type": "image_url", "image_url": {"url": url}}]}]}


def ask(client, url: str, payload: dict, retries: int, backoff: float,
        sleep: Callable[[float], None] = time.sleep) -> str:
    """POST with retries on connection errors, 429 and 5xx (exponential back-off, honouring
    Retry-After); other errors are the caller's to fix."""
    import httpx

    for attempt in range(retries + 1):
        try:
            r = client.post(url, json=payload)
        except httpx.TransportError as e:
            if attempt == retries:
                raise RobustscaleError(f"--base-url: {type(e).__name__} after {retries} retries") from None
            sleep(backoff * 2 ** attempt)
            continue
        if r.status_code == 429 or r.status_code >= 500:
            if attempt == retries:
                raise RobustscaleError(f"--base-url: HTTP {r.status_code} after {retries} retries")
            retry_after = r.headers.get("retry-after", "")
            delay = float(retry_after) if retry_after.replace(".", "", 1).isdigit() else 0.0
            sleep(min(60.0, max(delay, backoff * 2 ** attempt)))
            continue
        if r.status_code != 200:
            raise RobustscaleError(f"--base-url: HTTP {r.status_code} from {url}: {r.text[:200]}")
        try:
            return r.json()["choices"][0]["message"]["content"]
        except (ValueError, KeyError, IndexError, TypeError):
            raise RobustscaleError(f"--base-url: reply is not a chat completion: {r.text[:200]}") from None
    raise AssertionError("unreachable")


def vlm_rate(sessions: sessionmaker[Session], study_name: str, base_url: str, model: str,
             api_key: str | None = None, rater_name: str | None = None, retries: int = 5,
             backoff: float = 1.0, timeout: float = 120.0,
             on_image: Callable[[int, int], None] | None = None) -> dict:
    """Rate the study's adversarial images not yet rated by this VLM; returns counts."""
    import httpx

    name = rater_name or model
    with sessions() as s:
        study = get_study(s, study_name)
        classes = list(study.classes)
        rater = s.scalar(select(Rater).where(Rater.study_id == study.id, Rater.name == name))
        if rater is not None and rater.kind != "vlm":
            raise RobustscaleError(f"--name {name!r}: a human rater of that name exists")
        done = set() if rater is None else set(s.scalars(
            select(Answer.image_id).where(Answer.rater_id == rater.id)))
        todo = [i for i in s.scalars(select(Image.id).where(Image.study_id == study.id)
                                     .order_by(Image.position)) if i not in done]
    if rater is None:
        rater, _ = add_rater(sessions, study_name, name, kind="vlm")
    prompt = prompt_for(classes)
    url = base_url.rstrip("/") + "/chat/completions"
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    unparsed = []
    with httpx.Client(headers=headers, timeout=timeout) as client:
        for k, image_id in enumerate(todo):
            with sessions() as s:
                png = s.get(Image, image_id).adversarial_png
            start = time.monotonic()
            text = ask(client, url, chat_payload(model, prompt, png), retries, backoff)
            parsed = parse_reply(text, classes)
            if parsed is None:
                unparsed.append(image_id)
            else:
                with sessions() as s:
                    s.add(Answer(rater_id=rater.id, image_id=image_id, phase="adversarial",
                                 choice=parsed[0], high_confidence=parsed[1],
                                 seconds=time.monotonic() - start))
                    s.commit()
            if on_image:
                on_image(k + 1, len(todo))
    return {"study": study_name, "rater": name, "already_rated": len(done),
            "rated": len(todo) - len(unparsed), "unparsed": len(unparsed)}
