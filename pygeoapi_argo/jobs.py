"""``JobStore``: job records that outlive Argo's workflow garbage collection.

SQLAlchemy 2 Core, portable between SQLite (the default: one file, WAL mode, shared by the threads
and processes of one host) and PostgreSQL (several replicas). The table is created on first use.

A job's status only moves forward: ``accepted`` → ``running`` → ``successful``/``failed`` →
``dismissed`` (steps may be skipped, a status may be repeated). Every status change is a
compare-and-set in SQL, so two writers racing (a poll marking a job successful, a DELETE dismissing
it) can never take a job back: the loser gets ``JobConflict`` instead of overwriting.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Collection
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError, IntegrityError

from pygeoapi_argo.errors import JobConflict, JobNotFound

ACCEPTED, RUNNING, SUCCESSFUL, FAILED, DISMISSED = "accepted", "running", "successful", "failed", "dismissed"
FINAL = frozenset({SUCCESSFUL, FAILED, DISMISSED})
# How far along each status is: a change may keep the rank or raise it, never lower it; the two
# outcomes share a rank but exclude each other (a failed job never becomes successful).
_RANK = {ACCEPTED: 0, RUNNING: 1, SUCCESSFUL: 2, FAILED: 2, DISMISSED: 3}


def _sources(status: str) -> list[str]:
    """The statuses a job may be in for a change to ``status`` to be allowed."""
    rank = _RANK[status]
    return [s for s, r in _RANK.items() if r < rank or s == status]


@dataclass(frozen=True)
class JobRecord:
    """One OGC job. ``inputs`` are stored masked (never a secret); ``results`` holds what
    ``results.collect`` returns: object keys and values, never presigned URLs (they expire)."""

    job_id: str
    process_id: str
    workflow_name: str
    status: str
    created: datetime
    updated: datetime
    message: str | None = None
    progress: int | None = None
    started: datetime | None = None
    finished: datetime | None = None
    inputs: Any = None
    requested_outputs: Any = None
    response: str = "raw"  # the OGC 1.0 execute ``response``: "raw" or "document"
    mimetype: str | None = None
    results: Any = None
    subscriber: Any = None
    schedule_id: str | None = None
    owner: str | None = None

    @property
    def is_final(self) -> bool:
        return self.status in FINAL


class UTCDateTime(sa.TypeDecorator):
    """Timezone-aware datetimes in, UTC datetimes out, on every backend (SQLite keeps no zone)."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("job timestamps must be timezone-aware")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


metadata = sa.MetaData()
jobs = sa.Table(
    "pygeoapi_argo_jobs", metadata,
    sa.Column("job_id", sa.String(64), primary_key=True),
    sa.Column("process_id", sa.String(255), nullable=False),
    sa.Column("workflow_name", sa.String(253), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("message", sa.Text),
    sa.Column("progress", sa.Integer),
    sa.Column("created", UTCDateTime, nullable=False),
    sa.Column("started", UTCDateTime),
    sa.Column("finished", UTCDateTime),
    sa.Column("updated", UTCDateTime, nullable=False),
    sa.Column("inputs", sa.JSON(none_as_null=True)),
    sa.Column("requested_outputs", sa.JSON(none_as_null=True)),
    sa.Column("response", sa.String(16), nullable=False),
    sa.Column("mimetype", sa.String(255)),
    sa.Column("results", sa.JSON(none_as_null=True)),
    sa.Column("subscriber", sa.JSON(none_as_null=True)),
    sa.Column("schedule_id", sa.String(255)),
    sa.Column("owner", sa.String(255)),
)
# The job list order (newest first, job_id breaks ties) and its two filters, served from indexes.
sa.Index("ix_pygeoapi_argo_jobs_order", jobs.c.created.desc(), jobs.c.job_id.desc())
sa.Index("ix_pygeoapi_argo_jobs_status", jobs.c.status, jobs.c.created.desc())
sa.Index("ix_pygeoapi_argo_jobs_process", jobs.c.process_id, jobs.c.created.desc())

_FIELDS = tuple(f.name for f in dataclasses.fields(JobRecord))
_UPDATABLE = frozenset(_FIELDS) - {"job_id"}


class JobStore:
    """Job records in one SQL database, named by a SQLAlchemy URL (``sqlite:///path/jobs.db``,
    ``postgresql+psycopg://…``). Nothing connects before the first call."""

    def __init__(self, connection: str, *, busy_timeout: float = 30.0) -> None:
        url = sa.make_url(connection)
        self._sqlite = url.get_backend_name() == "sqlite"
        options: dict[str, Any] = {"pool_pre_ping": not self._sqlite}
        if self._sqlite:
            # the pool hands connections to any thread; SQLite itself serialises the writers
            options["connect_args"] = {"timeout": busy_timeout, "check_same_thread": False}
        self.engine: Engine = sa.create_engine(url, **options)
        if self._sqlite:
            sa.event.listen(self.engine, "connect", _sqlite_pragmas(busy_timeout))
        self._ready = False
        self._lock = threading.Lock()

    def _db(self) -> Engine:
        """The engine, with the table created on first use (idempotent; another process creating
        it at the same moment makes ours fail once, and the second look finds it)."""
        if not self._ready:
            with self._lock:
                if not self._ready:
                    try:
                        metadata.create_all(self.engine)
                    except DBAPIError:
                        metadata.create_all(self.engine)
                    self._ready = True
        return self.engine

    def add(self, record: JobRecord) -> None:
        _check_status(record.status)
        try:
            with self._db().begin() as conn:
                conn.execute(jobs.insert().values(**dataclasses.asdict(record)))
        except IntegrityError:
            raise JobConflict(f"job {record.job_id} exists already") from None

    def get(self, job_id: str) -> JobRecord | None:
        with self._db().connect() as conn:
            row = conn.execute(sa.select(jobs).where(jobs.c.job_id == job_id)).one_or_none()
        return _record(row) if row is not None else None

    def update(self, job_id: str, **changes: Any) -> JobRecord:
        """Apply ``changes`` (JobRecord fields) and return the new record. ``updated`` is set to now
        unless given. A status change that would move the job back (or a dismissed job anywhere)
        is refused with ``JobConflict``; an unknown job is ``JobNotFound``."""
        unknown = set(changes) - _UPDATABLE
        if unknown:
            raise TypeError(f"not a job field: {', '.join(sorted(unknown))}")
        changes.setdefault("updated", datetime.now(UTC))
        statement = jobs.update().where(jobs.c.job_id == job_id).values(**changes).returning(*jobs.c)
        if "status" in changes:
            _check_status(changes["status"])
            statement = statement.where(jobs.c.status.in_(_sources(changes["status"])))
        with self._db().begin() as conn:
            row = conn.execute(statement).one_or_none()
            if row is None:
                current = conn.execute(sa.select(jobs.c.status).where(jobs.c.job_id == job_id)).scalar()
        if row is not None:
            return _record(row)
        if current is None:
            raise JobNotFound(f"no job {job_id}")
        raise JobConflict(f"job {job_id} is {current}: it cannot become {changes['status']}")

    def list(self, limit: int | None = None, offset: int = 0, *, status: Collection[str] | None = None,
             process_ids: Collection[str] | None = None) -> tuple[list[JobRecord], int]:
        """One page of jobs, newest first, and how many match in all (for ``numberMatched``)."""
        if isinstance(status, str):
            status = (status,)
        conditions = []
        if status:
            conditions.append(jobs.c.status.in_(list(status)))
        if process_ids:
            conditions.append(jobs.c.process_id.in_(list(process_ids)))
        page = (sa.select(jobs).where(*conditions).order_by(jobs.c.created.desc(), jobs.c.job_id.desc())
                .limit(limit).offset(offset))
        count = sa.select(sa.func.count()).select_from(jobs).where(*conditions)
        with self._db().connect() as conn:
            rows = conn.execute(page).all()
            total = conn.execute(count).scalar_one()
        return [_record(row) for row in rows], total

    def non_final(self) -> list[JobRecord]:
        """Jobs still accepted or running, oldest first: what a restarted manager must follow up."""
        query = (sa.select(jobs).where(jobs.c.status.in_([ACCEPTED, RUNNING]))
                 .order_by(jobs.c.created, jobs.c.job_id))
        with self._db().connect() as conn:
            return [_record(row) for row in conn.execute(query)]

    def dispose(self) -> None:
        """Close pooled connections (tests, and forked worker processes before they start)."""
        self.engine.dispose()


def _check_status(status: str) -> None:
    if status not in _RANK:
        raise ValueError(f"not an OGC job status: {status!r}")


def _record(row: sa.Row) -> JobRecord:
    return JobRecord(**{name: row._mapping[name] for name in _FIELDS})


def _sqlite_pragmas(busy_timeout: float):
    """WAL lets readers work while one process writes; the busy timeout makes a writer wait for
    the lock instead of failing at once when another thread or process holds it."""

    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {int(busy_timeout * 1000)}")
        cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute("PRAGMA synchronous = NORMAL")
        cursor.close()

    return on_connect
