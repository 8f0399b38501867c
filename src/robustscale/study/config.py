"""Settings of the study app, built explicitly (never at import) by the CLI or a test."""

from __future__ import annotations

import dataclasses
import os

DEFAULT_DB_URL = "sqlite:///robustscale-study.db"
DB_ENV = "ROBUSTSCALE_STUDY_DB"
ADMIN_TOKEN_ENV = "ROBUSTSCALE_STUDY_ADMIN_TOKEN"


@dataclasses.dataclass(frozen=True)
class Settings:
    """db_url: SQLAlchemy URL (SQLite file by default, `postgresql+psycopg://...` for PostgreSQL).
    admin_token: password of the admin pages (None: admin pages are closed).
    rate_limit: answers per second a rater may post, with a burst of `rate_burst`; a person
    labelling a 32x32 image needs about a second, so 5/s only stops scripts.
    quiz_size: images in the public quiz (the paper's quiz format: 25)."""

    db_url: str = DEFAULT_DB_URL
    admin_token: str | None = None
    rate_limit: float = 5.0
    rate_burst: int = 20
    quiz_size: int = 25

    @classmethod
    def from_env(cls, **overrides) -> "Settings":
        """Settings from ROBUSTSCALE_STUDY_DB / ROBUSTSCALE_STUDY_ADMIN_TOKEN, then `overrides`
        (None values are ignored so CLI flags left unset fall through)."""
        values = {"db_url": os.environ.get(DB_ENV, DEFAULT_DB_URL),
                  "admin_token": os.environ.get(ADMIN_TOKEN_ENV) or None}
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)
