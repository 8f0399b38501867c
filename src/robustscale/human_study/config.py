"""Settings of the study app, built explicitly (never at import) by the CLI or a test, and the
paper's defaults of the study. Light on imports: the CLI reads its defaults from here."""

from __future__ import annotations

import dataclasses
import os

BATCH_SIZE = 100  # App. G.1: users classified images in batches of 100
N_RATERS = 3  # §4.1: three human users
QUIZ_SIZE = 25
# Raters who fail more than this share of their attention checks are not scored (the paper's
# in-house raters had none; a quarter tolerates one slip in four on a crowd platform)
MAX_ATTENTION_FAILURE = 0.25  # the paper's quiz format: 25 adversarial images
# Fig. 18's VLM payload: room to "reason about the contents" before the final two words, and
# temperature 0 for the most likely reply
VLM_MAX_TOKENS = 3200
VLM_TEMPERATURE = 0.0
VLM_TIMEOUT = 120.0  # seconds per request

DEFAULT_DB_URL = "sqlite:///robustscale-study.db"
DB_ENV = "ROBUSTSCALE_STUDY_DB"
ADMIN_TOKEN_ENV = "ROBUSTSCALE_STUDY_ADMIN_TOKEN"


@dataclasses.dataclass(frozen=True)
class Settings:
    """db_url: SQLAlchemy URL (SQLite file by default, `postgresql+psycopg://...` for PostgreSQL).
    admin_token: password of the admin pages (None: admin pages are closed).
    rate_limit: answers per second a rater may post, with a burst of `rate_burst`; a person
    labelling a 32x32 image needs about a second, so 5/s only stops scripts.
    quiz_size: images in the public quiz (the paper's quiz format: 25).
    max_body: largest request body in bytes (an answer or the quiz form is < 10 kB).
    admin_session_seconds: an admin login lasts this long.
    login_attempts_per_minute: admin password tries per client address (burst of as many).
    rater_cache_seconds: how long a verified rater link is trusted before its row is read again,
    i.e. how soon `study revoke-rater` takes effect on a running server.
    joins_per_minute: visits of a public join link (`study recruit`) per client address (burst
    of as many): a participant joins once, a script making raters in bulk is stopped."""

    db_url: str = DEFAULT_DB_URL
    admin_token: str | None = None
    rate_limit: float = 5.0
    rate_burst: int = 20
    quiz_size: int = QUIZ_SIZE
    max_body: int = 64 * 1024
    admin_session_seconds: float = 8 * 3600.0
    login_attempts_per_minute: int = 5
    rater_cache_seconds: float = 2.0
    joins_per_minute: int = 30

    @classmethod
    def from_env(cls, **overrides) -> "Settings":
        """Settings from ROBUSTSCALE_STUDY_DB / ROBUSTSCALE_STUDY_ADMIN_TOKEN, then `overrides`
        (None values are ignored so CLI flags left unset fall through)."""
        values = {"db_url": os.environ.get(DB_ENV, DEFAULT_DB_URL),
                  "admin_token": os.environ.get(ADMIN_TOKEN_ENV) or None}
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)
