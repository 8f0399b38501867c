"""The VLM rater of App. G.2: each adversarial image with the paper's prompt (Fig. 17) in the
paper's payload (Fig. 18: temperature 0, max_tokens 3200) to an OpenAI-compatible
chat-completions endpoint; the reply's final 'class, confidence' is recorded, with the whole
reply, as the study's fourth rater. Resumable: images it already answered are skipped. The rater
is created with its first parsed reply, so a run that fails early leaves no empty VLM behind."""

from __future__ import annotations

import base64
import re
import time
from typing import Callable

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from robustscale.errors import RobustscaleError
from robustscale.human_study.answers import answered_count, new_rater
from robustscale.human_study.config import VLM_MAX_TOKENS, VLM_TEMPERATURE, VLM_TIMEOUT
from robustscale.human_study.db import Answer, Image, Rater, Reply, get_study, lock_rater
from robustscale.human_study.images import CIFAR10_CLASSES
from robustscale.progress import progress_bar

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


def chat_payload(model: str, prompt: str, png: bytes, max_tokens: int = VLM_MAX_TOKENS,
                 temperature: float = VLM_TEMPERATURE) -> dict:
    """Fig. 18's payload, field for field."""
    url = "data:image/png;base64," + base64.b64encode(png).decode()
    return {"model": model, "messages": [{"role": "user", "content": [
        {"type": "text", "text": prompt}, {"type": "image_url", "image_url": {"url": url}}]}],
        "max_tokens": max_tokens, "temperature": temperature}


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
                raise RobustscaleError(f"base_url {url}: {type(e).__name__} after {retries} "
                                       "retries") from None
            sleep(backoff * 2 ** attempt)
            continue
        if r.status_code == 429 or r.status_code >= 500:
            if attempt == retries:
                raise RobustscaleError(f"base_url {url}: HTTP {r.status_code} after {retries} retries")
            retry_after = r.headers.get("retry-after", "")
            delay = float(retry_after) if retry_after.replace(".", "", 1).isdigit() else 0.0
            sleep(min(60.0, max(delay, backoff * 2 ** attempt)))
            continue
        if r.status_code != 200:
            raise RobustscaleError(f"base_url {url}: HTTP {r.status_code}: {r.text[:200]}")
        try:
            return r.json()["choices"][0]["message"]["content"]
        except (ValueError, KeyError, IndexError, TypeError):
            raise RobustscaleError(f"base_url {url}: reply is not a chat completion: "
                                   f"{r.text[:200]}") from None
    raise AssertionError("unreachable")


def vlm_rate(sessions: sessionmaker[Session], study_name: str, base_url: str, model: str,
             api_key: str | None = None, rater_name: str | None = None, retries: int = 5,
             backoff: float = 1.0, timeout: float = VLM_TIMEOUT, max_tokens: int = VLM_MAX_TOKENS,
             temperature: float = VLM_TEMPERATURE, progress: bool = False) -> dict:
    """Rate the study's adversarial images not yet rated by this VLM; returns counts.

    Raises RobustscaleError when there were images to rate and not one reply parsed (a wrong
    model or prompt format should not pass as an empty success)."""
    import httpx

    if not timeout > 0 or max_tokens < 1:
        raise RobustscaleError(f"timeout {timeout}, max_tokens {max_tokens}: expected positive "
                               "numbers")
    name = rater_name or model
    with sessions() as s:
        study = get_study(s, study_name)
        classes = list(study.classes)
        rater = s.scalar(select(Rater).where(Rater.study_id == study.id, Rater.name == name))
        if rater is not None and rater.kind != "vlm":
            raise RobustscaleError(f"rater name {name!r}: a human rater of that name exists")
        done = set() if rater is None else set(s.scalars(
            select(Answer.image_id).where(Answer.rater_id == rater.id)))
        todo = [i for i in s.scalars(select(Image.id).where(Image.study_id == study.id,
                                                            ~Image.attention)
                                     .order_by(Image.position)) if i not in done]
    rater_id = None if rater is None else rater.id
    prompt = prompt_for(classes)
    url = base_url.rstrip("/") + "/chat/completions"
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    unparsed = []
    with httpx.Client(headers=headers, timeout=timeout) as client, \
            progress_bar(len(todo), "VLM rating", enabled=progress) as advance:
        for image_id in todo:
            with sessions() as s:
                png = s.scalar(select(Image.adversarial_png).where(Image.id == image_id))
            start = time.monotonic()
            text = ask(client, url, chat_payload(model, prompt, png, max_tokens, temperature),
                       retries, backoff)
            parsed = parse_reply(text, classes)
            if parsed is None:
                unparsed.append(text)
            else:
                with sessions() as s:
                    if rater_id is None:
                        rater_id = new_rater(s, get_study(s, study_name), name, "vlm")[0].id
                    lock_rater(s, rater_id)
                    answer = Answer(rater_id=rater_id, image_id=image_id, phase="adversarial",
                                    position=answered_count(s, rater_id),
                                    choice=parsed[0], high_confidence=parsed[1],
                                    seconds=time.monotonic() - start)
                    s.add(answer)
                    s.flush()
                    s.add(Reply(answer_id=answer.id, text=text))
                    s.commit()
            advance()
    if todo and len(unparsed) == len(todo):
        raise RobustscaleError(
            f"model {model!r}: none of its {len(todo)} replies ends in '<class>, <confidence>' "
            f"(last reply: {unparsed[-1][-200:]!r}); nothing was recorded")
    return {"study": study_name, "rater": name, "already_rated": len(done),
            "rated": len(todo) - len(unparsed), "unparsed": len(unparsed),
            "unparsed_replies": [t[-500:] for t in unparsed[:5]]}
