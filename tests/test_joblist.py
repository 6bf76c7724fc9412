"""The OGC job-list query (``joblist.py``) and its filtering in the JobStore, on SQLite and PostgreSQL.

The store is seeded with JobRecords covering the corner cases (shared creation times, accepted jobs
that started, final jobs that never started, durations exactly on a bound, running jobs measured to
``now``); every combination of status, processID, datetime and duration filters is paged through and compared
with a brute-force filter written here from the OGC 18-062r2 requirements.
"""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import pytest

from pygeoapi_argo.errors import InvalidParameterValue
from pygeoapi_argo.joblist import JobQuery, document, parse
from pygeoapi_argo.jobs import FINAL, JobFilter, JobRecord, JobStore

NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
T0 = NOW - timedelta(hours=2)


def args(query: str) -> dict[str, list[str]]:
    return parse_qs(query, keep_blank_values=True)


def q(query: str, default_limit: int = 20) -> JobQuery:
    return parse(args(query), default_limit=default_limit, now=NOW)


# --- parsing ---------------------------------------------------------------------------------------


def test_no_filters_default_page() -> None:
    query = q("f=json&lang=en")
    assert query.where == JobFilter(now=NOW)
    assert (query.limit, query.offset, query.filters) == (20, 0, ())
    assert q("", default_limit=5000).limit == 1000  # a configured default never exceeds OGC's maximum


def test_repeated_and_comma_separated_values() -> None:
    query = q("status=running&status=failed,successful&processID=echo&processID=buffer,echo&type=process")
    assert query.where.status == ("running", "failed", "successful")
    assert query.where.process_ids == ("echo", "buffer")
    # the links repeat the client's own spelling
    assert query.filters == (("status", "running"), ("status", "failed,successful"), ("processID", "echo"),
                             ("processID", "buffer,echo"), ("type", "process"))


@pytest.mark.parametrize(("text", "start", "end"), [
    ("2025-03-01T10:00:00Z", datetime(2025, 3, 1, 10, tzinfo=UTC), datetime(2025, 3, 1, 10, tzinfo=UTC)),
    ("2025-03-01t10:00:00.25z", datetime(2025, 3, 1, 10, 0, 0, 250000, tzinfo=UTC),
     datetime(2025, 3, 1, 10, 0, 0, 250000, tzinfo=UTC)),
    ("2025-03-01T10:00:00Z/2025-03-01T11:00:00+01:00", datetime(2025, 3, 1, 10, tzinfo=UTC),
     datetime(2025, 3, 1, 10, tzinfo=UTC)),
    ("../2025-03-01T11:00:00-02:00", None, datetime(2025, 3, 1, 13, tzinfo=UTC)),
    ("/2025-03-01T11:00:00Z", None, datetime(2025, 3, 1, 11, tzinfo=UTC)),
    ("2025-03-01T11:00:00Z/..", datetime(2025, 3, 1, 11, tzinfo=UTC), None),
    ("2025-03-01T11:00:00Z/", datetime(2025, 3, 1, 11, tzinfo=UTC), None),
    # a '+' sent unescaped in a query string arrives as a space
    ("2025-03-01T12:00:00 01:00", datetime(2025, 3, 1, 11, tzinfo=UTC), datetime(2025, 3, 1, 11, tzinfo=UTC)),
])
def test_datetime_instants_and_intervals(text: str, start: datetime | None, end: datetime | None) -> None:
    where = parse({"datetime": [text]}, default_limit=10, now=NOW).where
    assert (where.created_from, where.created_to) == (start, end)


@pytest.mark.parametrize(("query", "name"), [
    ("status=done", "status"),
    ("status=Running", "status"),
    ("status=running,", "status"),
    ("processID=", "processID"),
    ("processID=echo,a%00b", "processID"),  # PostgreSQL cannot compare a string holding NUL
    ("type=workflow", "type"),
    ("datetime=2025-03-01", "datetime"),
    ("datetime=2025-03-01T10:00:00", "datetime"),  # no zone
    ("datetime=2025-13-01T10:00:00Z", "datetime"),
    ("datetime=yesterday", "datetime"),
    ("datetime=../..", "datetime"),
    ("datetime=/", "datetime"),
    ("datetime=2025-03-01T10:00:00Z/2025-03-01T09:00:00Z", "datetime"),
    ("datetime=2025-03-01T10:00:00Z/../..", "datetime"),
    ("datetime=2025-03-01T10:00:00Z&datetime=2025-03-01T11:00:00Z", "datetime"),
    ("minDuration=-1", "minDuration"),
    ("minDuration=1.5", "minDuration"),
    ("maxDuration=99999999999999999999", "maxDuration"),
    ("minDuration=10&maxDuration=5", "minDuration"),
    ("limit=0", "limit"),
    ("limit=-5", "limit"),
    ("limit=1001", "limit"),
    ("limit=10000000000000000000000", "limit"),
    ("limit=ten", "limit"),
    ("limit=\uff11\uff10", "limit"),  # fullwidth digits pass str.isdigit
    ("limit=5&limit=6", "limit"),
    ("offset=-1", "offset"),
    ("offset=10000000000", "offset"),
])
def test_bad_values_name_the_parameter(query: str, name: str) -> None:
    with pytest.raises(InvalidParameterValue) as caught:
        q(query)
    assert caught.value.name == name and name in caught.value.message


def test_limits_and_durations_at_their_bounds() -> None:
    query = q("limit=1000&offset=0&minDuration=0&maxDuration=1000000000")
    assert (query.limit, query.offset) == (1000, 0)
    assert (query.where.min_duration, query.where.max_duration) == (0, 1_000_000_000)
    assert q("minDuration=5&maxDuration=5").where.max_duration == 5


# --- the document and its links ---------------------------------------------------------------------


def job_dict(job_id: str) -> dict:
    return {"identifier": job_id, "process_id": "echo", "status": "running", "message": None, "progress": 5,
            "created": "2025-03-01T10:00:00.000000Z", "started": "2025-03-01T10:00:00.000000Z",
            "finished": None, "updated": "2025-03-01T10:00:01.000000Z"}


def links(doc: dict) -> dict[str, dict[str, list[str]]]:
    """rel → the link's query, parsed."""
    return {link["rel"]: parse_qs(urlsplit(link["href"]).query) for link in doc["links"]}


def test_links_keep_filters_and_page() -> None:
    query = q("status=running&status=failed&processID=echo&datetime=../2025-03-01T11:00:00Z"
              "&minDuration=1&limit=2&offset=2&f=json")
    doc = document([job_dict("a"), job_dict("b")], 7, query, jobs_url="http://x/jobs", fmt="json")
    assert (doc["numberMatched"], doc["numberReturned"]) == (7, 2)
    assert [j["jobID"] for j in doc["jobs"]] == ["a", "b"] and doc["jobs"][0]["type"] == "process"
    found = links(doc)
    filters = {"status": ["running", "failed"], "processID": ["echo"],
               "datetime": ["../2025-03-01T11:00:00Z"], "minDuration": ["1"], "limit": ["2"]}
    assert found["self"] == {**filters, "offset": ["2"], "f": ["json"]}
    assert found["alternate"] == {**filters, "offset": ["2"], "f": ["html"]}
    assert found["next"] == {**filters, "offset": ["4"], "f": ["json"]}
    assert found["prev"] == {**filters, "offset": ["0"], "f": ["json"]}
    assert all(link["href"].startswith("http://x/jobs?") for link in doc["links"])


def test_first_and_last_pages_have_no_prev_or_next() -> None:
    first = document([job_dict("a")], 1, q("limit=1"), jobs_url="http://x/jobs", fmt="html")
    assert set(links(first)) == {"self", "alternate"}
    assert links(first)["self"]["f"] == ["html"]
    last = document([job_dict("a")], 3, q("limit=2&offset=2"), jobs_url="http://x/jobs", fmt="json")
    assert set(links(last)) == {"self", "alternate", "prev"}
    beyond = document([], 3, q("limit=2&offset=10"), jobs_url="http://x/jobs", fmt="json")
    assert links(beyond)["prev"]["offset"] == ["8"] and "next" not in links(beyond)


# --- filtering in SQL against a brute force -----------------------------------------------------------


def record(job_id: str, process_id: str, status: str, created: datetime, *, started: datetime | None = None,
           finished: datetime | None = None) -> JobRecord:
    return JobRecord(job_id=job_id, process_id=process_id, workflow_name=f"pygeoapi-job-{job_id}",
                     status=status, created=created, updated=created, started=started, finished=finished)


def created_at(pair: int) -> datetime:
    """Jobs come in pairs sharing a creation time, with microseconds that a lossy store would drop."""
    return T0 + timedelta(minutes=2 * pair, microseconds=137 * (pair % 3))


def z(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def seed() -> list[JobRecord]:
    """48 jobs over three processes: every status, creation times with microseconds (some shared),
    durations on the bounds the filters below use (0, 30, 60, 600 s)."""
    records = []
    durations = [0, 30, 60, 61, 599, 600, 3600]  # 7 against 6 statuses: each status meets each
    statuses = ["successful", "failed", "dismissed", "running", "accepted", "successful"]
    for i in range(48):
        created = created_at(i // 2)
        status = statuses[i % len(statuses)]
        took = timedelta(seconds=durations[i % len(durations)])
        if status == "running":
            started, finished = NOW - took, None  # measured to NOW
        elif status == "accepted":
            started, finished = (created if i % 4 == 0 else None), None  # a Pending workflow may have started
        elif i % 7 == 0:
            started, finished = None, created + took  # failed or dismissed before it started
        else:
            started = created + timedelta(seconds=1)
            finished = started + took
        records.append(record(f"job{i:02d}", ("echo", "buffer", "raster")[i % 3], status, created,
                              started=started, finished=finished))
    return records


def duration(job: JobRecord, now: datetime = NOW) -> float | None:
    """OGC /req/job-list/duration-response: running → now - started, completed → finished - started,
    anything else (accepted, or statistics missing) has none."""
    if job.started is None:
        return None
    if job.status == "running":
        return (now - job.started).total_seconds()
    if job.status in FINAL and job.finished is not None:
        return (job.finished - job.started).total_seconds()
    return None


def brute_force(jobs: list[JobRecord], where: JobFilter) -> list[str]:
    """The ids ``where`` selects, newest first (the e2e filter test uses it on real jobs too)."""
    kept = []
    for job in jobs:
        if where.status and job.status not in where.status:
            continue
        if where.process_ids and job.process_id not in where.process_ids:
            continue
        if where.created_from is not None and job.created < where.created_from:
            continue
        if where.created_to is not None and job.created > where.created_to:
            continue
        if where.min_duration is not None or where.max_duration is not None:
            took = duration(job, where.now)
            if took is None:
                continue
            if where.min_duration is not None and took < where.min_duration:
                continue
            if where.max_duration is not None and took > where.max_duration:
                continue
        kept.append(job)
    kept.sort(key=lambda job: (job.created, job.job_id), reverse=True)
    return [job.job_id for job in kept]


STATUS_FILTERS = ["", "status=running", "status=successful,failed", "status=accepted&status=dismissed"]
PROCESS_FILTERS = ["", "processID=echo", "processID=buffer&processID=raster", "processID=nope"]
DATETIME_FILTERS = [
    "",
    f"datetime={z(created_at(5))}",  # one pair's creation time, exactly
    f"datetime={z(created_at(10))}/{z(created_at(19))}",  # both ends inclusive, to the microsecond
    f"datetime=../{z(created_at(16) - timedelta(microseconds=1))}",
    f"datetime={z(created_at(20) + timedelta(microseconds=1))}/",
]
DURATION_FILTERS = ["", "minDuration=60", "maxDuration=30", "minDuration=30&maxDuration=600",
                    "minDuration=0&maxDuration=0"]


@pytest.fixture(scope="module")
def jobs() -> list[JobRecord]:
    return seed()


@pytest.fixture
def seeded(job_store_url: str, jobs: list[JobRecord]):
    store = JobStore(job_store_url)
    for job in jobs:
        store.add(job)
    yield store
    store.dispose()


def test_seed_covers_the_corners(jobs: list[JobRecord]) -> None:
    """The brute force must see each case the SQL must get right, or the comparison proves little."""
    assert {j.status for j in jobs} == {"accepted", "running", "successful", "failed", "dismissed"}
    assert any(j.status == "accepted" and j.started for j in jobs)
    assert any(j.is_final and j.started is None for j in jobs)
    assert {duration(j) for j in jobs} >= {0, 30, 60, 600}
    assert any(j.status == "running" and duration(j) == 60 for j in jobs)
    assert len({j.created for j in jobs}) < len(jobs)


def test_every_filter_combination_matches_brute_force(seeded: JobStore, jobs: list[JobRecord]) -> None:
    non_empty = 0
    for parts in itertools.product(STATUS_FILTERS, PROCESS_FILTERS, DATETIME_FILTERS, DURATION_FILTERS):
        text = "&".join(p for p in parts if p)
        where = q(text).where
        expected = brute_force(jobs, where)
        non_empty += bool(expected)
        records, total = seeded.list(where=where)
        assert [r.job_id for r in records] == expected, text
        assert total == len(expected), text
        # paged: 7 at a time, to one page past the end
        paged: list[str] = []
        for offset in range(0, len(expected) + 7, 7):
            page, total = seeded.list(7, offset, where)
            assert total == len(expected), text
            paged += [r.job_id for r in page]
        assert paged == expected, text
    # most combinations select something: the comparisons are not all of empty lists
    assert non_empty > len(STATUS_FILTERS) * len(PROCESS_FILTERS) * len(DATETIME_FILTERS) * 2


def test_running_jobs_are_measured_to_now(seeded: JobStore) -> None:
    later = JobFilter(status=("running",), min_duration=60, now=NOW + timedelta(seconds=30))
    at_now = JobFilter(status=("running",), min_duration=60, now=NOW)
    assert seeded.list(where=later)[1] > seeded.list(where=at_now)[1]
    # without ``now`` the store measures to the real clock: every seeded start is in the past
    assert seeded.list(where=JobFilter(status=("running",), min_duration=1))[1] == seeded.list(
        where=JobFilter(status=("running",)))[1]
