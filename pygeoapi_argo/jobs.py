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
import time
import uuid
from collections.abc import Collection, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement

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
    logs: Any = None  # where each step's log was archived when the job ended (``logs.archive``)
    cpu_seconds: int | None = None  # Argo's resourcesDuration of the finished workflow: CPU core-seconds
    memory_seconds: int | None = None  # ... and memory in Argo's unit, (100 MiB)-seconds
    stac_item: str | None = None  # where the job's STAC Item was registered (``stac.py``)
    stac_error: str | None = None  # why its last registration failed (retried later)

    @property
    def is_final(self) -> bool:
        return self.status in FINAL


@dataclass(frozen=True)
class JobFilter:
    """Which jobs a list holds: the OGC job-list filters; an empty or ``None`` field filters nothing.

    ``created_from``/``created_to`` bound the creation time, both inclusive (an instant is both).
    A job's duration (seconds) is ``finished - started`` once final and ``now - started`` while
    running; jobs without one (accepted, or never started) are left out by a duration filter, as
    OGC 18-062r2 /req/job-list/duration-response says. ``now`` defaults to the moment of the query.
    """

    status: tuple[str, ...] = ()
    process_ids: tuple[str, ...] = ()
    created_from: datetime | None = None
    created_to: datetime | None = None
    min_duration: int | None = None
    max_duration: int | None = None
    now: datetime | None = None
    owner: str | None = None  # per-user isolation (owners.py): only this owner's jobs


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
    sa.Column("logs", sa.JSON(none_as_null=True)),
    sa.Column("cpu_seconds", sa.BigInteger),
    sa.Column("memory_seconds", sa.BigInteger),
    sa.Column("stac_item", sa.Text),
    sa.Column("stac_error", sa.Text),
)
# Named locks shared by every process and replica on this store (``JobStore.lock``).
locks = sa.Table(
    "pygeoapi_argo_locks", metadata,
    sa.Column("name", sa.String(255), primary_key=True),
    sa.Column("holder", sa.String(32), nullable=False),
    sa.Column("expires", UTCDateTime, nullable=False),
)
# Work owed once per job after it moves on, done by the reconciler and recorded, so a restart neither
# forgets nor repeats it (at-least-once: marked done after it succeeded): the subscriber callbacks,
# named as the OGC ``subscriber`` members, and archiving the logs of the ended workflow.
CALLBACKS = ("inProgressUri", "successUri", "failedUri")
ARCHIVE_LOGS = "archive-logs"
PENDING, DONE, SKIPPED, GAVE_UP = "pending", "done", "skipped", "gave-up"
tasks = sa.Table(
    "pygeoapi_argo_job_tasks", metadata,
    sa.Column("job_id", sa.String(64), primary_key=True),
    sa.Column("task", sa.String(32), primary_key=True),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("next_attempt", UTCDateTime, nullable=False),
    sa.Column("detail", sa.Text),  # why skipped, or the last failure (never a URL: it may hold a token)
)
sa.Index("ix_pygeoapi_argo_job_tasks_due", tasks.c.state, tasks.c.next_attempt)
# The job list order (newest first, job_id breaks ties) and its two filters, served from indexes.
sa.Index("ix_pygeoapi_argo_jobs_order", jobs.c.created.desc(), jobs.c.job_id.desc())
sa.Index("ix_pygeoapi_argo_jobs_status", jobs.c.status, jobs.c.created.desc())
sa.Index("ix_pygeoapi_argo_jobs_process", jobs.c.process_id, jobs.c.created.desc())
sa.Index("ix_pygeoapi_argo_jobs_owner", jobs.c.owner, jobs.c.created.desc())  # per-user job lists
# Duration filters of running jobs compare ``started`` with a bound instant.
sa.Index("ix_pygeoapi_argo_jobs_started", jobs.c.status, jobs.c.started)


class _Seconds(FunctionElement):
    """``end - start`` in seconds, on each backend's own date arithmetic (SQLite: to the millisecond,
    the resolution of its date functions; PostgreSQL: to the microsecond)."""

    type = sa.Float()
    inherit_cache = True


@compiles(_Seconds, "sqlite")
def _seconds_sqlite(element: _Seconds, compiler: SQLCompiler, **kw: Any) -> str:
    start, end = (compiler.process(arg, **kw) for arg in element.clauses)
    # rounded: julianday's double loses a few microseconds, which would move exact whole seconds
    return f"ROUND((julianday({end}) - julianday({start})) * 86400.0, 3)"


@compiles(_Seconds, "postgresql")
def _seconds_postgresql(element: _Seconds, compiler: SQLCompiler, **kw: Any) -> str:
    start, end = (compiler.process(arg, **kw) for arg in element.clauses)
    return f"EXTRACT(EPOCH FROM ({end} - {start}))"

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
                    _add_missing_columns(self.engine)
                    self._ready = True
        return self.engine

    def add(self, record: JobRecord) -> None:
        _check_status(record.status)
        try:
            with self._db().begin() as conn:
                conn.execute(jobs.insert().values(**dataclasses.asdict(record)))
                conn.execute(tasks.insert(), _tasks_of(record))
        except IntegrityError:
            raise JobConflict(f"job {record.job_id} exists already") from None

    def get(self, job_id: str) -> JobRecord | None:
        if "\x00" in job_id:  # no job id holds NUL, and PostgreSQL refuses to compare with one
            return None
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

    def list(self, limit: int | None = None, offset: int = 0,
             where: JobFilter | None = None) -> tuple[list[JobRecord], int]:
        """One page of the jobs ``where`` selects, newest first, and how many match in all
        (``numberMatched``). The filtering is SQL, served by the indexes above."""
        conditions = _conditions(where or JobFilter())
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

    def stac_pending(self, process_ids: Collection[str], limit: int = 100) -> list[JobRecord]:
        """Successful jobs of these processes whose STAC Item is not registered yet, least recently
        updated (tried) first: a failed attempt sends a job to the back."""
        query = (sa.select(jobs).where(jobs.c.status == SUCCESSFUL, jobs.c.stac_item.is_(None),
                                       jobs.c.process_id.in_(list(process_ids)))
                 .order_by(jobs.c.updated, jobs.c.job_id).limit(limit))
        with self._db().connect() as conn:
            return [_record(row) for row in conn.execute(query)]

    @contextmanager
    def lock(self, name: str, *, ttl: float = 60.0, wait: float = 30.0) -> Iterator[None]:
        """Hold the lock ``name`` across processes and replicas: a row that exists while it is held
        (an insert is atomic on every backend). A holder that dies loses it once ``ttl`` has passed;
        ``TimeoutError`` if it cannot be had within ``wait`` seconds."""
        holder = uuid.uuid4().hex
        deadline = time.monotonic() + wait
        delay = 0.01
        while True:
            now = datetime.now(UTC)
            try:
                with self._db().begin() as conn:
                    conn.execute(locks.delete().where(locks.c.name == name, locks.c.expires < now))
                    conn.execute(locks.insert().values(name=name, holder=holder,
                                                       expires=now + timedelta(seconds=ttl)))
                break
            except IntegrityError:
                if time.monotonic() >= deadline:
                    raise TimeoutError(f"lock {name!r} is held elsewhere") from None
                time.sleep(delay)
                delay = min(delay * 2, 0.25)
        try:
            yield
        finally:
            with self._db().begin() as conn:
                conn.execute(locks.delete().where(locks.c.name == name, locks.c.holder == holder))

    def hold_lease(self, name: str, holder: str, ttl: float) -> bool:
        """Take the lease ``name`` (a ``locks`` row) for ``holder``, or renew it if ``holder`` has it,
        until ``ttl`` seconds from now; False while another holder's lease runs. A compare-and-set
        ``UPDATE`` (the row is ours or expired), else an ``INSERT`` that only one racer wins."""
        now = datetime.now(UTC)
        expires = now + timedelta(seconds=ttl)
        with self._db().begin() as conn:
            taken = conn.execute(locks.update().where(
                locks.c.name == name, sa.or_(locks.c.holder == holder, locks.c.expires < now),
            ).values(holder=holder, expires=expires)).rowcount
        if taken:
            return True
        try:
            with self._db().begin() as conn:
                conn.execute(locks.insert().values(name=name, holder=holder, expires=expires))
        except IntegrityError:
            return False
        return True

    def release_lease(self, name: str, holder: str) -> None:
        """Give the lease up at once (a clean stop), so another process need not wait for it to expire."""
        with self._db().begin() as conn:
            conn.execute(locks.delete().where(locks.c.name == name, locks.c.holder == holder))

    def lease_holder(self, name: str) -> str | None:
        """Who holds the lease ``name`` now (None when free or expired)."""
        query = sa.select(locks.c.holder).where(locks.c.name == name, locks.c.expires >= datetime.now(UTC))
        with self._db().connect() as conn:
            return conn.execute(query).scalar()

    def due_tasks(self, limit: int = 100) -> list[tuple[JobRecord, JobTask]]:
        """Pending tasks whose (next) attempt is due and whose job has reached the status they wait
        for (a final one; ``running`` for ``inProgressUri``), with their jobs, oldest due first."""
        now = datetime.now(UTC)
        ready = sa.or_(jobs.c.status.in_(sorted(FINAL)),
                       sa.and_(tasks.c.task == "inProgressUri", jobs.c.status == RUNNING))
        query = (sa.select(jobs, *[c.label(f"task_{c.name}") for c in tasks.c])
                 .join(tasks, tasks.c.job_id == jobs.c.job_id)
                 .where(tasks.c.state == PENDING, tasks.c.next_attempt <= now, ready)
                 .order_by(tasks.c.next_attempt).limit(limit))
        with self._db().connect() as conn:
            rows = conn.execute(query).all()
        return [(_record(row), JobTask(**{c.name: row._mapping[f"task_{c.name}"] for c in tasks.c}))
                for row in rows]

    def job_tasks(self, job_id: str) -> dict[str, JobTask]:
        with self._db().connect() as conn:
            rows = conn.execute(sa.select(tasks).where(tasks.c.job_id == job_id)).all()
        return {row.task: JobTask(**row._mapping) for row in rows}

    def settle_task(self, job_id: str, task: str, state: str, detail: str | None = None) -> None:
        """The task is over: ``done``, ``skipped`` (no longer meaningful) or ``gave-up``."""
        with self._db().begin() as conn:
            conn.execute(tasks.update().where(tasks.c.job_id == job_id, tasks.c.task == task)
                         .values(state=state, detail=detail))

    def retry_task(self, job_id: str, task: str, delay: float, detail: str) -> None:
        """An attempt failed: count it and try again ``delay`` seconds from now."""
        with self._db().begin() as conn:
            conn.execute(tasks.update().where(tasks.c.job_id == job_id, tasks.c.task == task).values(
                attempts=tasks.c.attempts + 1, detail=detail,
                next_attempt=datetime.now(UTC) + timedelta(seconds=delay)))

    def dispose(self) -> None:
        """Close pooled connections (tests, and forked worker processes before they start)."""
        self.engine.dispose()

    def get_many(self, job_ids: list[str]) -> dict[str, JobRecord]:
        """Records by job id, in one query (the job list's status documents)."""
        if not job_ids:
            return {}
        with self._db().connect() as conn:
            rows = conn.execute(sa.select(jobs).where(jobs.c.job_id.in_(list(job_ids)))).all()
        return {row.job_id: _record(row) for row in rows}

    def usage(self) -> list[tuple[str, str, int, float, int, int]]:
        """``(process_id, status, jobs, seconds, cpu_seconds, memory_seconds)`` summed per process and
        status (``seconds``: ``finished - started`` of finished jobs): what ``/metrics`` exports,
        computed by the database at scrape time, so every worker and replica agrees."""
        query = (sa.select(jobs.c.process_id, jobs.c.status, sa.func.count(),
                           sa.func.coalesce(sa.func.sum(_Seconds(jobs.c.started, jobs.c.finished)), 0),
                           sa.func.coalesce(sa.func.sum(jobs.c.cpu_seconds), 0),
                           sa.func.coalesce(sa.func.sum(jobs.c.memory_seconds), 0))
                 .group_by(jobs.c.process_id, jobs.c.status))
        with self._db().connect() as conn:
            return [(p, s, int(n), float(took), int(cpu), int(mem))
                    for p, s, n, took, cpu, mem in conn.execute(query)]


def _conditions(where: JobFilter) -> list[sa.ColumnElement[bool]]:
    conditions: list[sa.ColumnElement[bool]] = []
    if where.status:
        conditions.append(jobs.c.status.in_(list(where.status)))
    if where.process_ids:
        conditions.append(jobs.c.process_id.in_(list(where.process_ids)))
    if where.owner is not None:
        conditions.append(jobs.c.owner == where.owner)
    if where.created_from is not None:
        conditions.append(jobs.c.created >= where.created_from)
    if where.created_to is not None:
        conditions.append(jobs.c.created <= where.created_to)
    if where.min_duration is not None or where.max_duration is not None:
        conditions.append(_duration_between(where.min_duration, where.max_duration,
                                            where.now or datetime.now(UTC)))
    return conditions


def _duration_between(low: int | None, high: int | None, now: datetime) -> sa.ColumnElement[bool]:
    """Running jobs by their start (``now - started >= low`` is ``started <= now - low``), finished
    jobs by ``finished - started``; the rest have no duration and never match."""
    running = [jobs.c.status == RUNNING, jobs.c.started.is_not(None)]
    final = [jobs.c.status.in_(sorted(FINAL)), jobs.c.started.is_not(None), jobs.c.finished.is_not(None)]
    took = _Seconds(jobs.c.started, jobs.c.finished)
    if low is not None:
        running.append(jobs.c.started <= now - timedelta(seconds=low))
        final.append(took >= low)
    if high is not None:
        running.append(jobs.c.started >= now - timedelta(seconds=high))
        final.append(took <= high)
    return sa.or_(sa.and_(*running), sa.and_(*final))


@dataclass(frozen=True)
class JobTask:
    """One row of ``tasks``: a callback or the log archive owed for a job."""

    job_id: str
    task: str
    state: str
    attempts: int
    next_attempt: datetime
    detail: str | None = None


def _tasks_of(record: JobRecord) -> list[dict[str, Any]]:
    """The tasks a new job owes: its log archive, and one callback per subscriber URI it gave."""
    subscriber = record.subscriber if isinstance(record.subscriber, dict) else {}
    names = [ARCHIVE_LOGS, *(kind for kind in CALLBACKS if subscriber.get(kind))]
    return [{"job_id": record.job_id, "task": name, "state": PENDING, "attempts": 0,
             "next_attempt": record.created} for name in names]


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


def _add_missing_columns(engine: Engine) -> None:
    """Bring a job table made by an older version up to date: ``create_all`` creates missing tables
    but never alters existing ones. Every column added since the first version is nullable, so an
    ``ADD COLUMN`` keeps the old rows valid; indexes of an old table are left as they are."""
    existing = {c["name"] for c in sa.inspect(engine).get_columns(jobs.name)}
    missing = [c for c in jobs.columns if c.name not in existing]
    if not missing:
        return
    with engine.begin() as conn:
        for column in missing:
            kind = column.type.compile(dialect=engine.dialect)
            try:
                conn.execute(sa.text(f'ALTER TABLE {jobs.name} ADD COLUMN "{column.name}" {kind}'))
            except DBAPIError:  # another process added it at the same moment
                if column.name not in {c["name"] for c in sa.inspect(conn).get_columns(jobs.name)}:
                    raise
