"""The study's tables (SQLAlchemy 2.0) and engine set-up for SQLite and PostgreSQL.

One row per answer, unique per (rater, image, phase): a duplicate or replayed answer is
impossible at the database level, whatever the web layer does.
"""

from __future__ import annotations

import datetime as dt
import secrets

from sqlalchemy import (JSON, Boolean, DateTime, Float, ForeignKey, Integer, LargeBinary, String,
                        Text, UniqueConstraint, create_engine, event, select)
from sqlalchemy.engine import Engine
from sqlalchemy.exc import ArgumentError
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, sessionmaker

from robustscale.errors import RobustscaleError

PHASES = ("adversarial", "clean")  # §4.1: a batch's adversarial images first, then the clean ones
CONFIDENCES = ("low", "high")  # §4.1: each user gave a confidence of low or high


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)


class Base(DeclarativeBase):
    pass


class Meta(Base):
    """Key/value pairs of the database itself (the signing secret)."""

    __tablename__ = "meta"
    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(String(256))


class Study(Base):
    __tablename__ = "studies"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(128), unique=True)
    classes: Mapped[list] = mapped_column(JSON)
    batch_size: Mapped[int] = mapped_column(Integer)
    n_raters: Mapped[int] = mapped_column(Integer)  # human raters expected per image
    n_total: Mapped[int] = mapped_column(Integer)  # test images the attack was run on
    n_robust: Mapped[int] = mapped_column(Integer)  # of those, classified correctly after the attack
    created: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)


class Image(Base):
    __tablename__ = "images"
    __table_args__ = (UniqueConstraint("study_id", "position"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    study_id: Mapped[int] = mapped_column(ForeignKey("studies.id"), index=True)
    position: Mapped[int] = mapped_column(Integer)
    index: Mapped[int] = mapped_column(Integer)  # test-set index
    label: Mapped[int] = mapped_column(Integer)
    prediction: Mapped[int | None] = mapped_column(Integer, nullable=True)
    adversarial_png: Mapped[bytes] = mapped_column(LargeBinary)
    clean_png: Mapped[bytes] = mapped_column(LargeBinary)


class Rater(Base):
    """A human with a personal link, or a VLM. Revoking sets `expires` to the moment of revoking."""

    __tablename__ = "raters"
    __table_args__ = (UniqueConstraint("study_id", "name"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    study_id: Mapped[int] = mapped_column(ForeignKey("studies.id"), index=True)
    name: Mapped[str] = mapped_column(String(128))
    kind: Mapped[str] = mapped_column(String(16), default="human")  # "human" or "vlm"
    token_hash: Mapped[str] = mapped_column(String(64))  # sha256 of the secret half of the link
    expires: Mapped[dt.datetime | None] = mapped_column(DateTime, nullable=True)
    created: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)


class Answer(Base):
    __tablename__ = "answers"
    __table_args__ = (UniqueConstraint("rater_id", "image_id", "phase", name="one_answer"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    rater_id: Mapped[int] = mapped_column(ForeignKey("raters.id"), index=True)
    image_id: Mapped[int] = mapped_column(ForeignKey("images.id"), index=True)
    phase: Mapped[str] = mapped_column(String(16))
    choice: Mapped[int] = mapped_column(Integer)  # class index
    high_confidence: Mapped[bool] = mapped_column(Boolean)
    seconds: Mapped[float | None] = mapped_column(Float, nullable=True)  # time to answer
    created: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)


class Reply(Base):
    """A VLM's raw reply behind one of its answers (App. G.2: the reasoning before the final
    'class, confidence'), kept so that a parse can be checked or redone. A table of its own so
    that databases made before it existed gain it through create_all."""

    __tablename__ = "replies"
    answer_id: Mapped[int] = mapped_column(ForeignKey("answers.id", ondelete="CASCADE"),
                                           primary_key=True)
    text: Mapped[str] = mapped_column(Text)


def make_engine(url: str) -> Engine:
    """Engine for `url`, tables created. SQLite gets WAL and a busy timeout so that many
    concurrent raters queue for the write lock instead of failing."""
    try:
        # Up to 50 connections: one for each of the server's 40 worker threads with room to spare,
        # so a burst of requests waits on the database (or the SQLite write lock), never on the pool.
        if url.startswith("sqlite"):
            engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False},
                                   pool_size=10, max_overflow=40)
            event.listen(engine, "connect", _sqlite_pragmas)
        else:
            engine = create_engine(url, pool_size=10, max_overflow=40, pool_pre_ping=True)
        Base.metadata.create_all(engine)
    except (ArgumentError, ImportError) as e:
        raise RobustscaleError(f"database URL {url}: expected a SQLAlchemy URL ({e})") from None
    except Exception as e:  # driver errors: connection refused, bad file, ...
        raise RobustscaleError(f"database URL {url}: cannot open the database ({type(e).__name__}: "
                               f"{str(e).splitlines()[0] if str(e) else ''})") from None
    return engine


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    cur = dbapi_connection.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.execute("PRAGMA synchronous=NORMAL")  # durable across app crashes; WAL keeps it consistent
    cur.execute("PRAGMA foreign_keys=ON")
    cur.close()


def make_sessionmaker(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


def signing_secret(sessions: sessionmaker[Session]) -> bytes:
    """The database's HMAC secret (CSRF and per-item nonces), created once, shared by every
    server process on the same database and stable across restarts."""
    with sessions() as s:
        row = s.get(Meta, "secret")
        if row is None:
            s.add(Meta(key="secret", value=secrets.token_hex(32)))
            try:
                s.commit()
            except Exception:  # another process created it first
                s.rollback()
            row = s.get(Meta, "secret")
        return bytes.fromhex(row.value)


def get_study(s: Session, name: str) -> Study:
    study = s.scalar(select(Study).where(Study.name == name))
    if study is None:
        raise RobustscaleError(f"study {name!r}: no such study in this database")
    return study
