"""The study's tables (SQLAlchemy 2.0) and engine set-up for SQLite and PostgreSQL.

One row per answer, unique per (rater, image, phase) and per (rater, position): a rater's
answers are numbered 0, 1, 2, ... in the order they were stored, so a duplicate, a replay or two
writers racing can neither double a position nor (with `lock_rater`) leave a hole.

Databases made before a column existed gain it at start-up (`upgrade`): the project has no
migration tool, and every added column has a value that can be worked out from the old rows.
"""

from __future__ import annotations

import datetime as dt
import secrets
from pathlib import Path

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    create_engine,
    event,
    func,
    inspect,
    select,
    text,
    update,
)
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
    # a clean image with an unambiguous label, shown between the attacked ones to check that a
    # rater pays attention; never scored as a study image
    attention: Mapped[bool] = mapped_column(Boolean, default=False, server_default="0")
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
    external_id: Mapped[str | None] = mapped_column(String(128), nullable=True)  # e.g. PROLIFIC_PID
    consented: Mapped[dt.datetime | None] = mapped_column(DateTime, nullable=True)
    expires: Mapped[dt.datetime | None] = mapped_column(DateTime, nullable=True)
    created: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)


class Answer(Base):
    __tablename__ = "answers"
    __table_args__ = (UniqueConstraint("rater_id", "image_id", "phase", name="one_answer"),
                      UniqueConstraint("rater_id", "position", name="one_position"))
    id: Mapped[int] = mapped_column(primary_key=True)
    rater_id: Mapped[int] = mapped_column(ForeignKey("raters.id"), index=True)
    position: Mapped[int] = mapped_column(Integer)  # the rater's n-th answer, from 0, no holes
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


class AdminSession(Base):
    """An admin login; a row, so that logging out and expiry hold across server restarts."""

    __tablename__ = "admin_sessions"
    id_hash: Mapped[str] = mapped_column(String(64), primary_key=True)  # sha256 of the cookie
    token_hash: Mapped[str] = mapped_column(String(64))  # the admin token it was opened with
    expires: Mapped[dt.datetime] = mapped_column(DateTime)
    ended: Mapped[dt.datetime | None] = mapped_column(DateTime, nullable=True)


class Recruitment(Base):
    """A study's public join link (`study recruit`): anyone with it gets a rater of their own,
    keyed by their participant id, and is sent to `completion_url` when done."""

    __tablename__ = "recruitments"
    study_id: Mapped[int] = mapped_column(ForeignKey("studies.id"), primary_key=True)
    key: Mapped[str] = mapped_column(String(64), unique=True)
    completion_url: Mapped[str] = mapped_column(Text)
    max_raters: Mapped[int | None] = mapped_column(Integer, nullable=True)
    expires: Mapped[dt.datetime | None] = mapped_column(DateTime, nullable=True)


def lock_rater(s: Session, rater_id: int) -> None:
    """Serialise the writes of one rater until `s` commits: a no-op UPDATE of the rater's row
    takes its row lock on PostgreSQL and the write lock on SQLite (where it must be the
    transaction's first statement, so that no stale read snapshot has to be upgraded)."""
    s.execute(update(Rater).where(Rater.id == rater_id).values(kind=Rater.kind))


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
        upgrade(engine)
    except (ArgumentError, ImportError) as e:
        raise RobustscaleError(f"database URL {url}: expected a SQLAlchemy URL ({e})") from None
    except Exception as e:  # driver errors: connection refused, bad file, ...
        raise RobustscaleError(f"database URL {url}: cannot open the database ({type(e).__name__}: "
                               f"{str(e).splitlines()[0] if str(e) else ''})") from None
    return engine


# Columns added after the first release: (table, column, SQL type and default).
ADDED_COLUMNS = [("images", "attention", "BOOLEAN NOT NULL DEFAULT FALSE"),
                 ("raters", "external_id", "VARCHAR(128)"), ("raters", "consented", "TIMESTAMP"),
                 ("answers", "position", "INTEGER")]


def upgrade(engine: Engine) -> None:
    """Add the columns a database made by an older version lacks. Old answers are numbered in
    the order they were stored (their ids), then (rater, position) is made unique."""
    have = {t: {c["name"] for c in inspect(engine).get_columns(t)} for t, _, _ in ADDED_COLUMNS}
    missing = [(t, c, kind) for t, c, kind in ADDED_COLUMNS if c not in have[t]]
    if not missing:
        return
    with engine.begin() as conn:
        for table, column, kind in missing:
            conn.execute(text(f"ALTER TABLE {table} ADD COLUMN {column} {kind}"))
        if ("answers", "position", "INTEGER") in missing:
            conn.execute(text("UPDATE answers SET position = (SELECT count(*) FROM answers b "
                              "WHERE b.rater_id = answers.rater_id AND b.id < answers.id)"))
            conn.execute(text("CREATE UNIQUE INDEX one_position ON answers (rater_id, position)"))


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    cur = dbapi_connection.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.execute("PRAGMA synchronous=NORMAL")  # durable across app crashes; WAL keeps it consistent
    cur.execute("PRAGMA foreign_keys=ON")
    cur.close()


def database_exists(url: str) -> None:
    """Raise unless `url` names a study database that exists: a server started from another
    folder must not silently make an empty one that refuses every valid link."""
    from sqlalchemy.engine import make_url

    try:
        parsed = make_url(url)
    except ArgumentError as e:
        raise RobustscaleError(f"database URL {url}: expected a SQLAlchemy URL ({e})") from None
    if parsed.get_backend_name() == "sqlite":
        path = parsed.database or ""
        if path in ("", ":memory:") or not Path(path).is_file():
            raise RobustscaleError(f"database URL {url}: no such database file "
                                   f"({Path(path).resolve() if path else 'in memory'}); give the "
                                   "right --db or add --create to make a new one")
        return
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            has = inspect(conn).has_table("studies")
    except Exception as e:  # driver errors: no such database, connection refused
        raise RobustscaleError(f"database URL {url}: cannot open the database ({type(e).__name__}); "
                               "add --create to make the tables in an existing empty one") from None
    finally:
        engine.dispose()
    if not has:
        raise RobustscaleError(f"database URL {url}: holds no study tables; add --create to make them")


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


def study_count(sessions: sessionmaker[Session]) -> int:
    with sessions() as s:
        return s.scalar(select(func.count()).select_from(Study))


def get_study(s: Session, name: str) -> Study:
    study = s.scalar(select(Study).where(Study.name == name))
    if study is None:
        raise RobustscaleError(f"study {name!r}: no such study in this database")
    return study
