"""JobStore against real SQLite files and a real PostgreSQL (``job_store_url`` runs each test on both):
round trips, forward-only status, paging, concurrency. The OGC filters: ``test_joblist.py``."""

from __future__ import annotations

import subprocess
import sys
import threading
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
import sqlalchemy as sa

from pygeoapi_argo.errors import JobConflict, JobNotFound
from pygeoapi_argo.jobs import JobFilter, JobRecord, JobStore

T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


def job(job_id: str, *, created: datetime = T0, process_id: str = "echo", status: str = "accepted",
        **extra) -> JobRecord:
    return JobRecord(job_id=job_id, process_id=process_id, workflow_name=f"pygeoapi-job-{job_id}",
                     status=status, created=created, updated=created, **extra)


@pytest.fixture
def url(job_store_url: str) -> str:
    return job_store_url


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'jobs.db'}"


@pytest.fixture
def store(url: str):
    store = JobStore(url)
    yield store
    store.dispose()


def test_round_trip_keeps_every_field_and_answers_utc(store: JobStore) -> None:
    cest = timezone(timedelta(hours=2))
    record = job(
        "a1", created=datetime(2025, 3, 1, 14, 0, tzinfo=cest), message="Job accepted", progress=0,
        inputs={"geometry": {"type": "Point", "coordinates": [1, 2]}, "token": "***"},
        requested_outputs={"result": {"transmissionMode": "reference"}}, response="document",
        mimetype="application/json", results={"result": {"urls": ["s3://results/a1/out.tif"]}},
        subscriber={"successUri": "https://example.org/done"}, schedule_id="nightly", owner="alice",
    )
    store.add(record)
    back = store.get("a1")
    assert back == record  # aware datetimes compare by instant
    assert back.created.tzinfo is UTC and back.created.hour == 12
    assert back.started is None and back.results == record.results


def test_naive_timestamps_are_refused(store: JobStore) -> None:
    with pytest.raises(sa.exc.StatementError, match="timezone-aware"):
        store.add(job("n1", created=datetime(2025, 1, 1)))


def test_unknown_job(store: JobStore) -> None:
    assert store.get("nope") is None
    assert store.get("a\x00b") is None  # a job id from a URL: PostgreSQL refuses to compare NUL
    with pytest.raises(JobNotFound, match="nope"):
        store.update("nope", status="running")


def test_duplicate_id_is_a_conflict(store: JobStore) -> None:
    store.add(job("d1"))
    with pytest.raises(JobConflict, match="exists"):
        store.add(job("d1", process_id="other"))
    assert store.get("d1").process_id == "echo"


def test_invalid_status_and_field(store: JobStore) -> None:
    with pytest.raises(ValueError, match="status"):
        store.add(job("s1", status="done"))
    store.add(job("s2"))
    with pytest.raises(ValueError, match="status"):
        store.update("s2", status="Succeeded")
    with pytest.raises(TypeError, match="job_id"):
        store.update("s2", job_id="s3")


def test_status_moves_forward_only(store: JobStore) -> None:
    store.add(job("f1"))
    assert store.update("f1", status="running", progress=10).progress == 10
    assert store.update("f1", status="running", progress=50).progress == 50
    done = store.update("f1", status="successful", progress=100, finished=T0 + timedelta(minutes=5),
                        results={"result": {"value": 3}})
    assert done.is_final and done.finished == T0 + timedelta(minutes=5)
    for back in ("accepted", "running", "failed"):
        with pytest.raises(JobConflict, match="successful"):
            store.update("f1", status=back, message="lost")
    assert store.get("f1") == done  # refused changes leave no trace
    # fields other than the status may still change (e.g. results collected again)
    assert store.update("f1", message="Job finished").message == "Job finished"
    dismissed = store.update("f1", status="dismissed")
    assert dismissed.status == "dismissed" and dismissed.results == {"result": {"value": 3}}
    assert store.update("f1", status="dismissed").status == "dismissed"  # idempotent
    for back in ("accepted", "running", "successful", "failed"):
        with pytest.raises(JobConflict, match="dismissed"):
            store.update("f1", status=back)


def test_failed_never_becomes_successful(store: JobStore) -> None:
    store.add(job("g1"))
    store.update("g1", status="failed", message="Error (exit code 1)")
    with pytest.raises(JobConflict):
        store.update("g1", status="successful")
    assert store.update("g1", status="dismissed").message == "Error (exit code 1)"


def test_update_stamps_updated(store: JobStore) -> None:
    store.add(job("u1"))
    before = datetime.now(UTC)
    assert store.update("u1", progress=5).updated >= before
    given = T0 + timedelta(hours=1)
    assert store.update("u1", progress=6, updated=given).updated == given


def test_list_newest_first_paged_counted_and_filtered(store: JobStore) -> None:
    # 12 jobs; two share each creation time so the job_id tiebreak matters
    for i in range(12):
        store.add(job(f"j{i:02d}", created=T0 + timedelta(minutes=i // 2),
                      process_id="raster" if i % 3 == 0 else "vector"))
    store.update("j03", status="running")
    store.update("j07", status="failed")
    expected = [f"j{i:02d}" for i in range(11, -1, -1)]

    records, total = store.list()
    assert [r.job_id for r in records] == expected and total == 12
    pages = [store.list(5, offset)[0] for offset in (0, 5, 10)]
    assert [r.job_id for page in pages for r in page] == expected
    assert [len(p) for p in pages] == [5, 5, 2]
    assert store.list(5, 10)[1] == 12
    assert store.list(5, 20) == ([], 12)

    records, total = store.list(10, 0, JobFilter(status=("running", "failed")))
    assert [r.job_id for r in records] == ["j07", "j03"] and total == 2
    assert store.list(where=JobFilter(status=("failed",)))[1] == 1
    records, total = store.list(2, 0, JobFilter(process_ids=("raster",)))
    assert [r.job_id for r in records] == ["j09", "j06"] and total == 4
    assert store.list(where=JobFilter(status=("accepted",), process_ids=("raster",)))[1] == 3
    assert [r.job_id for r in store.non_final()] == [f"j{i:02d}" for i in range(12) if i != 7]


def test_list_is_served_by_indexes(sqlite_url: str) -> None:
    store = JobStore(sqlite_url)
    store.add(job("i1"))
    with store.engine.connect() as conn:
        def plan(where: str) -> str:
            rows = conn.exec_driver_sql(
                f"EXPLAIN QUERY PLAN SELECT * FROM pygeoapi_argo_jobs {where} "
                "ORDER BY created DESC, job_id DESC LIMIT 10 OFFSET 0").all()
            return " ".join(str(row[-1]) for row in rows)

        assert "ix_pygeoapi_argo_jobs_order" in plan("")
        assert "TEMP B-TREE" not in plan("")  # no sort: the index gives the order
        assert "ix_pygeoapi_argo_jobs_status" in plan("WHERE status = 'running'")
        assert "ix_pygeoapi_argo_jobs_process" in plan("WHERE process_id = 'echo'")
    store.dispose()


def test_sqlite_file_is_wal_and_outlives_the_store(sqlite_url: str) -> None:
    store = JobStore(sqlite_url)
    store.add(job("p1"))
    store.dispose()
    again = JobStore(sqlite_url)
    try:
        assert again.get("p1").workflow_name == "pygeoapi-job-p1"
        with again.engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 30000
    finally:
        again.dispose()


def test_construction_touches_nothing(tmp_path: Path) -> None:
    JobStore(f"sqlite:///{tmp_path / 'missing' / 'jobs.db'}")  # a bad path only fails on first use
    assert not (tmp_path / "missing").exists()


def test_two_threads_racing_on_the_same_jobs(url: str) -> None:
    """One thread finishes jobs while another dismisses them, each through its own store (own
    pool, like two processes): every job ends dismissed, and the only refusals are
    ``successful`` arriving after ``dismissed``."""
    setup = JobStore(url)
    ids = [f"r{i:03d}" for i in range(60)]
    for job_id in ids:
        setup.add(job(job_id, status="running"))
    refused: dict[str, list[str]] = {"successful": [], "dismissed": []}
    errors: list[BaseException] = []
    barrier = threading.Barrier(2)

    def worker(target: str) -> None:
        store = JobStore(url)
        try:
            barrier.wait()
            for job_id in ids:
                try:
                    store.update(job_id, status=target, progress=100)
                except JobConflict:
                    refused[target].append(job_id)
        except BaseException as exc:  # surfaced in the main thread below
            errors.append(exc)
        finally:
            store.dispose()

    threads = [threading.Thread(target=worker, args=(t,)) for t in ("successful", "dismissed")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors
    assert refused["dismissed"] == []
    assert {r.status for r in setup.list()[0]} == {"dismissed"}
    setup.dispose()


def test_another_process_writes_the_same_file(url: str, store: JobStore) -> None:
    code = (
        "import sys; from datetime import UTC, datetime\n"
        "from pygeoapi_argo.jobs import JobRecord, JobStore\n"
        "s = JobStore(sys.argv[1]); now = datetime.now(UTC)\n"
        "for i in range(40):\n"
        "    s.add(JobRecord(job_id=f'x{i}', process_id='p', workflow_name='w', status='accepted',"
        " created=now, updated=now))\n"
        "    s.update(f'x{i}', status='running')\n"
    )
    child = subprocess.Popen([sys.executable, "-c", code, url], cwd=Path(__file__).resolve().parent.parent)
    for i in range(40):
        store.add(job(f"y{i}"))
        store.update(f"y{i}", status="running")
    assert child.wait(timeout=60) == 0
    records, total = store.list(where=JobFilter(status=("running",)))
    assert total == 80 and len(records) == 80


def test_a_job_table_of_an_older_version_gains_the_new_columns(tmp_path: Path) -> None:
    """A store made before a column existed opens, keeps its rows and stores the new field."""

    url = f"sqlite:///{tmp_path / 'old.db'}"
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text(
            "CREATE TABLE pygeoapi_argo_jobs (job_id VARCHAR(64) PRIMARY KEY, "
            "process_id VARCHAR(255) NOT NULL, workflow_name VARCHAR(253) NOT NULL, "
            "status VARCHAR(16) NOT NULL, created DATETIME NOT NULL, "
            "updated DATETIME NOT NULL)"))
        conn.execute(sa.text(
            "INSERT INTO pygeoapi_argo_jobs VALUES ('old', 'echo', 'pygeoapi-job-old', 'successful', "
            "'2026-01-01 00:00:00', '2026-01-01 00:00:00')"))
    engine.dispose()
    store = JobStore(url)
    assert store.get("old").status == "successful"
    assert store.update("old", message="still here").message == "still here"
    store.dispose()
