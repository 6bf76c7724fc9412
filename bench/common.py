"""Servers for the benchmarks: the very fixtures of ``tests/conftest.py``, driven outside pytest.

Benchmarks must measure the stack the tests exercise, started the same way, so this module does not
restate any command line: it imports conftest and runs its fixture generators (unwrapped from pytest's
decorator with ``inspect.unwrap``) as context managers, with a plain temporary folder standing in for
pytest's ``tmp_path_factory``. Also the few timing helpers every benchmark prints with.
"""

from __future__ import annotations

import contextlib
import inspect
import math
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import requests
from hera.workflows import WorkflowsService

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
import conftest  # noqa: E402  (tests/ is not a package: conftest is importable only from its folder)

FINAL_PHASES = ("Succeeded", "Failed", "Error")


class TempDirs:
    """The one method of ``pytest.TempPathFactory`` the fixtures call, over a folder we remove."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def mktemp(self, basename: str) -> Path:
        return Path(tempfile.mkdtemp(prefix=f"{basename}-", dir=self.root))


def _fixture(fixture: Callable, *args: object) -> contextlib.AbstractContextManager:
    """A conftest generator fixture as a context manager: its set-up before, its tear-down after."""
    return contextlib.contextmanager(inspect.unwrap(fixture))(*args)


@dataclass
class Servers:
    s3: conftest.S3Server
    emulator: conftest.Emulator
    start_pygeoapi: conftest.PygeoapiFactory

    def hera(self) -> WorkflowsService:
        """hera's client on a keep-alive session, as the plugin's own client keeps its connection."""
        return WorkflowsService(host=self.emulator.url, namespace=self.emulator.namespace,
                                session=requests.Session())


@contextlib.contextmanager
def servers() -> Iterator[Servers]:
    """rclone S3 and the emulator over the sample templates; pygeoapi started on demand; all stopped after."""
    with tempfile.TemporaryDirectory(prefix="pygeoapi-argo-bench-") as tmp, contextlib.ExitStack() as stack:
        dirs = TempDirs(Path(tmp))
        s3 = stack.enter_context(_fixture(conftest.s3, dirs))
        start_emulator = stack.enter_context(_fixture(conftest.start_emulator, s3, dirs))
        start_pygeoapi = stack.enter_context(_fixture(conftest.start_pygeoapi, s3, dirs))
        yield Servers(s3=s3, emulator=start_emulator(), start_pygeoapi=start_pygeoapi)


@contextlib.contextmanager
def stac_api() -> Iterator[conftest.StacApi]:
    """A PostgreSQL cluster and stac-fastapi-pgstac on it (the ``postgres`` and ``stac_api`` fixtures)."""
    with _fixture(conftest.postgres) as postgres, _fixture(conftest.stac_api, postgres) as api:
        yield api


def wait_phase(argo: WorkflowsService, name: str, *, poll: float, timeout: float = 120.0) -> str:
    """Poll a workflow's phase until it is final; a benchmark of a failed run is meaningless, so raise."""
    deadline = time.monotonic() + timeout
    while True:
        # metadata.name keeps the projection parseable by hera's models (it requires metadata)
        status = argo.get_workflow(name, fields="metadata.name,status.phase,status.message").status
        phase = status.phase if status else None
        if phase in FINAL_PHASES:
            if phase != "Succeeded":
                raise RuntimeError(f"workflow {name} ended {phase}: {status.message}")
            return phase
        if time.monotonic() > deadline:
            raise TimeoutError(f"workflow {name} still {phase!r} after {timeout} s")
        time.sleep(poll)


def p95(samples: list[float]) -> float:
    """Nearest-rank 95th percentile (the 29th of 30 sorted samples)."""
    ordered = sorted(samples)
    return ordered[math.ceil(0.95 * len(ordered)) - 1]


def summary(samples: list[float], *, with_p95: bool) -> str:
    """Median (and p95 where there are enough samples for one), min and max in milliseconds."""
    ms = [s * 1000 for s in samples]
    tail = f"p95 {p95(ms):7.1f} ms   " if with_p95 else ""
    return (f"median {statistics.median(ms):7.1f} ms   {tail}"
            f"min {min(ms):7.1f} ms   max {max(ms):7.1f} ms   (n={len(ms)})")
