"""Runs one pod's main container as a local process in a private sandbox.

The image is never pulled: the command runs on this machine, with ``python``/``python3`` resolved to
the interpreter running the emulator (it carries the project's geo stack). Each pod gets a
bubblewrap sandbox built on an empty tmpfs root (see design.md, "Known traps"): the system and the
interpreter are mounted read-only, and ``/tmp``, ``/output``, every declared parameter/artifact path
and every volume are private host directories the controller reads outputs from after the process
ends. Nothing the step writes lands anywhere else on the host.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from .state import Pod

SCRIPTED_ANNOTATION = "emulator.pygeoapi-argo.io/scripted"
_PYTHON = re.compile(r"^python(3(\.\d+)?)?$")
_PATH = "/emulator/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
_KILL_GRACE_SECONDS = 2.0
_RESULT_LIMIT = 256 * 1024
_MEMORY_UNIT = 100 * 1024 * 1024  # Argo counts memory in (100Mi)-seconds


class PodError(Exception):
    """The pod could not start (Argo: the container never ran): node ``Error`` with this message."""


@dataclass
class Mount:
    """A host directory (or file) seen inside the sandbox at ``target``."""

    target: str
    source: Path
    writable: bool = True


@dataclass
class PodRequest:
    """What the controller hands the executor: a resolved container or script template."""

    name: str
    template: dict
    kind: Literal["container", "script"]
    env: dict[str, str]
    mounts: list[Mount]
    root: Path  # the pod's private host directory
    bin_dir: Path  # holds the python wrappers, seen at /emulator/bin
    deadline: float | None = None  # time.monotonic() after which the step is killed


@dataclass
class PodResult:
    exit_code: int | None  # None: killed before or while running
    message: str = ""  # why it was killed
    stdout: str = ""
    # Argo's resourcesDuration (whole seconds), here measured: CPU time used, and peak memory
    # (in units of 100Mi) times the wall time; scripted pods run nothing and use nothing
    resources_duration: dict[str, int] = field(default_factory=lambda: {"cpu": 0, "memory": 0})


@dataclass
class Execution:
    """One run of a pod; ``kill`` may come from any thread (stop, terminate, deadline)."""

    request: PodRequest
    pod: Pod
    sandbox: Literal["bwrap", "none"] = "bwrap"
    _killed: str = ""
    _proc: subprocess.Popen | None = None
    _done: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def kill(self, message: str) -> None:
        with self._lock:
            if self._killed or self._done.is_set():
                return
            self._killed = message
            proc = self._proc
        self._done.set()
        if proc is not None:
            _terminate(proc)

    def run(self) -> PodResult:
        scripted = (
            (self.request.template.get("metadata") or {}).get("annotations", {}).get(SCRIPTED_ANNOTATION)
        )
        try:
            if scripted is not None:
                return self._run_scripted(json.loads(scripted))
            return self._run_process()
        finally:
            self._done.set()

    # --- scripted mode: exact failures for tests ----------------------------------------------

    def _run_scripted(self, script: dict) -> PodResult:
        for path, content in (script.get("outputs") or {}).items():
            host = host_path(self.request.mounts, path)
            if host is None:
                raise PodError(f"scripted output {path} is not under a writable path of the pod")
            host.parent.mkdir(parents=True, exist_ok=True)
            host.write_text(content)
        for line in script.get("logs") or []:
            self.pod.append(str(line))
        wait = None if script.get("hang") else float(script.get("sleep") or 0)
        if self._wait(wait):
            return PodResult(None, self._killed)
        return PodResult(int(script.get("exitCode", 0)), stdout="\n".join(script.get("logs") or []))

    def _wait(self, seconds: float | None) -> bool:
        """Sleep (forever if None) until killed or the deadline; True when killed."""
        deadline = self.request.deadline
        end = None if seconds is None else time.monotonic() + seconds
        while True:
            limits = [t for t in (end, deadline) if t is not None]
            timeout = None if not limits else max(0.0, min(limits) - time.monotonic())
            if self._done.wait(timeout):
                return True
            if deadline is not None and time.monotonic() >= deadline:
                self.kill("Step exceeded its deadline")
                return True
            if end is not None and time.monotonic() >= end:
                return False

    # --- a real process -----------------------------------------------------------------------

    def _run_process(self) -> PodResult:
        argv = self._argv()
        env = {
            "PATH": _PATH,
            "HOME": "/tmp",
            "LANG": "C.UTF-8",
            "HOSTNAME": self.request.name,
            **self.request.env,
        }
        if self.sandbox == "bwrap":
            argv = [*_bwrap_args(self.request), *argv]
        else:
            argv, env = _host_mapped(self.request, argv, env)
        with self._lock:
            if self._killed:
                return PodResult(None, self._killed)
            try:
                self._proc = subprocess.Popen(
                    argv,
                    env=env,
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    start_new_session=True,
                    cwd=self.request.root if self.sandbox == "none" else None,
                )
            except OSError as exc:
                raise PodError(f"failed to start container: {exc}") from exc
        stdout: list[str] = []
        readers = [
            threading.Thread(target=self._pump, args=(self._proc.stdout, stdout), daemon=True),
            threading.Thread(target=self._pump, args=(self._proc.stderr, None), daemon=True),
        ]
        for reader in readers:
            reader.start()
        if self.request.deadline is not None:
            timer = threading.Timer(
                max(0.0, self.request.deadline - time.monotonic()),
                self.kill,
                args=("Step exceeded its deadline",),
            )
            timer.daemon = True
            timer.start()
        started = time.monotonic()
        code, cpu, max_rss = _wait(self._proc)
        resources = _resources_duration(cpu, max_rss, time.monotonic() - started)
        for reader in readers:
            reader.join()
        if self.request.deadline is not None:
            timer.cancel()
        if self._killed:
            return PodResult(None, self._killed, resources_duration=resources)
        text = "".join(stdout)
        return PodResult(code, stdout=text[:_RESULT_LIMIT], resources_duration=resources)

    def _pump(self, stream, sink: list[str] | None) -> None:
        for raw in iter(stream.readline, b""):
            text = raw.decode(errors="replace")
            if sink is not None:
                sink.append(text)
            self.pod.append(text.rstrip("\n"))
        stream.close()

    def _argv(self) -> list[str]:
        body = self.request.template[self.request.kind]
        command = list(body.get("command") or [])
        args = list(body.get("args") or [])
        if self.request.kind == "script":
            script = self.request.root / "script"
            script.write_text(body.get("source", ""))
            argv = [*command, "/argo/staging/script"]
        else:
            argv = [*command, *args]
        if not argv:
            raise PodError("container has no command: the emulator does not know the image's entrypoint")
        if _PYTHON.match(argv[0]):
            argv[0] = sandbox_python() if self.sandbox == "bwrap" else sys.executable
        return argv


def host_path(mounts: list[Mount], path: str) -> Path | None:
    """Where a path inside the sandbox lives on the host (the deepest mount covering it)."""
    best: Mount | None = None
    for mount in mounts:
        if (path == mount.target or path.startswith(mount.target.rstrip("/") + "/")) and (
            best is None or len(mount.target) > len(best.target)
        ):
            best = mount
    if best is None:
        return None
    relative = path[len(best.target) :].lstrip("/")
    return best.source / relative if relative else best.source


def _in_venv() -> bool:
    return sys.prefix != sys.base_prefix


def sandbox_python() -> str:
    """The interpreter's path inside the sandbox: the venv is mounted at /emulator/venv, where no
    volume mount (say at /work) can hide it; Python finds its venv from that path."""
    if _in_venv():
        return f"/emulator/venv/{os.path.relpath(sys.executable, sys.prefix)}"
    return sys.executable


def python_wrapper_dir(base: Path) -> Path:
    """``/emulator/bin`` with ``python``/``python3`` starting this interpreter inside the sandbox."""
    directory = base / "bin"
    directory.mkdir(parents=True, exist_ok=True)
    for name in ("python", "python3"):
        wrapper = directory / name
        wrapper.write_text(f'#!/bin/sh\nexec "{sandbox_python()}" "$@"\n')
        wrapper.chmod(0o755)
    return directory


def _interpreter_roots() -> list[str]:
    """The base installation the interpreter (or its venv's symlinks) needs read-only, at its own path."""
    roots: list[str] = []
    for candidate in (sys.base_prefix, os.path.dirname(os.path.realpath(sys.executable))):
        real = os.path.realpath(candidate)
        if real.startswith("/usr/") or any(real == r or real.startswith(r + "/") for r in roots):
            continue
        roots.append(real)
    return roots


def _bwrap_args(request: PodRequest) -> list[str]:
    args = [
        "bwrap",
        "--die-with-parent",
        "--unshare-pid",
        "--unshare-ipc",
        "--unshare-uts",
        "--hostname",
        request.name[:63],
        "--tmpfs",
        "/",
        "--ro-bind",
        "/usr",
        "/usr",
        "--ro-bind",
        "/etc",
        "/etc",
        "--proc",
        "/proc",
        "--dev",
        "/dev",
    ]
    for link in ("bin", "sbin", "lib", "lib32", "lib64", "libx32"):
        host = Path("/") / link
        if host.is_symlink():
            args += ["--symlink", os.readlink(host), f"/{link}"]
        elif host.is_dir():
            args += ["--ro-bind", str(host), f"/{link}"]
    for root in _interpreter_roots():
        args += ["--ro-bind", root, root]
    if _in_venv():
        args += ["--ro-bind", sys.prefix, "/emulator/venv"]
    args += ["--ro-bind", str(request.bin_dir), "/emulator/bin"]
    if request.kind == "script":
        args += ["--ro-bind", str(request.root / "script"), "/argo/staging/script"]
    for mount in sorted(request.mounts, key=lambda m: m.target.count("/")):
        args += ["--bind" if mount.writable else "--ro-bind", str(mount.source), mount.target]
    args += ["--chdir", "/"]
    return args


def _host_mapped(
    request: PodRequest, argv: list[str], env: dict[str, str]
) -> tuple[list[str], dict[str, str]]:
    """``--sandbox none``: rewrite sandbox paths in the command line to the pod's host directories."""
    mapping = {m.target: str(m.source) for m in request.mounts}
    mapping["/argo/staging/script"] = str(request.root / "script")
    targets = sorted(mapping, key=len, reverse=True)
    pattern = re.compile(r"(?<![\w./-])(" + "|".join(re.escape(t) for t in targets) + r")(?=$|[/\s'\";:)])")

    def rewrite(text: str) -> str:
        return pattern.sub(lambda m: mapping[m.group(1)], text)

    if request.kind == "script":
        script = request.root / "script"
        script.write_text(rewrite(script.read_text()))
    env = {k: rewrite(v) for k, v in env.items()}
    env["PATH"] = f"{os.path.dirname(sys.executable)}:{os.environ.get('PATH', '/usr/bin:/bin')}"
    env["TMPDIR"] = mapping.get("/tmp", str(request.root))
    return [rewrite(a) for a in argv], env


def _wait(proc: subprocess.Popen) -> tuple[int, float, int]:
    """``Popen.wait`` that also answers what the process (and the children it waited for: bwrap
    waits for the step) used, from ``wait4``: exit code, CPU seconds, peak memory in KiB."""
    try:
        _, status, usage = os.wait4(proc.pid, 0)
    except ChildProcessError:  # a kill's wait (``_terminate``) reaped it first: usage unknown
        return proc.wait(), 0.0, 0
    proc.returncode = os.waitstatus_to_exitcode(status)
    return proc.returncode, usage.ru_utime + usage.ru_stime, usage.ru_maxrss


def _resources_duration(cpu_seconds: float, max_rss_kib: int, wall_seconds: float) -> dict[str, int]:
    """Argo's ``resourcesDuration`` of a pod, rounded up as a pod that ran used at least a second."""
    memory = max_rss_kib * 1024 / _MEMORY_UNIT * wall_seconds
    return {"cpu": math.ceil(cpu_seconds), "memory": math.ceil(memory)}


def _terminate(proc: subprocess.Popen) -> None:
    """SIGTERM the pod's process group, then SIGKILL whatever of the group is left.

    The SIGKILL is sent even when bwrap itself has exited: a SIGTERM that lands while bwrap is still
    setting up can kill bwrap before its sandboxed child exists (and before ``--die-with-parent``
    holds), and the namespace's init ignores SIGTERM from outside. Survivors keep the group id, and
    would hold the log pipes open until they end on their own.
    """
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(_KILL_GRACE_SECONDS)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)


def remove_tree(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)
