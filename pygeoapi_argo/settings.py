"""Typed settings from pygeoapi's ``server.manager`` configuration and the environment.

Each section is a frozen dataclass built by ``from_config(config, env)``: config keys win over
environment variables, every value is checked once at start-up, and all problems are reported
together in one ``ConfigurationError`` (one line per problem, naming the key), so an operator
fixes a config file in one round instead of one error at a time.

Reading is pure: no file is opened and no network is touched here. pygeoapi builds the manager
while generating its OpenAPI document, often on a machine where token files and CA bundles of
the cluster do not exist; those paths are read when the client first needs them.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from .errors import ConfigurationError

ARGO_KEY = "server.manager.argo"

# A Kubernetes namespace is a DNS-1123 label: an unset one must never reach a URL as "None".
_DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")
_BASE_HREF = re.compile(r"/([A-Za-z0-9._~!$&'()*+,;=:@%-]+/)*")


class Secret:
    """A string that never shows itself in a repr, a log line or an exception message."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


class Problems:
    """Collects one message per configuration problem; ``raise_if_any`` reports them all at once."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.messages: list[str] = []

    def add(self, key: str, message: str) -> None:
        self.messages.append(f"{self.prefix}.{key}: {message}")

    def raise_if_any(self) -> None:
        if self.messages:
            raise ConfigurationError("invalid configuration:\n- " + "\n- ".join(self.messages))

    def unknown_keys(self, config: Mapping[str, Any], known: set[str], hints: Mapping[str, str]) -> None:
        for key in sorted(str(key) for key in set(config) - known):
            hint = hints.get(key, f"known keys are {', '.join(sorted(known))}")
            self.add(key, f"unknown key ({hint})")

    def boolean(self, key: str, value: Any) -> bool | None:
        """YAML booleans, and "true"/"false" as pygeoapi's ``${ENV}`` substitution yields them."""
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in ("true", "false"):
            return value.strip().lower() == "true"
        self.add(key, f"must be true or false, not {value!r}")
        return None

    def number(self, key: str, value: Any, *, integer: bool, minimum: float,
               maximum: float) -> float | int | None:
        try:
            if isinstance(value, bool):
                raise ValueError
            parsed = int(value) if integer else float(value)
            if integer and isinstance(value, float | str) and float(value) != parsed:
                raise ValueError
        except (TypeError, ValueError):
            kind = "an integer" if integer else "a number"
            self.add(key, f"must be {kind}, not {value!r}")
            return None
        if not minimum <= parsed <= maximum:
            self.add(key, f"must be between {minimum:g} and {maximum:g}, not {parsed:g}")
            return None
        return parsed

    def path(self, key: str, value: Any) -> Path | None:
        if not isinstance(value, str | Path) or not str(value).strip():
            self.add(key, f"must be a file path, not {value!r}")
            return None
        return Path(str(value).strip()).expanduser()


@dataclass(frozen=True)
class ArgoSettings:
    """Where the Argo Server is and how to talk to it.

    ``server`` is ``scheme://host[:port]`` and ``base_href`` the path prefix with both slashes
    (``/`` when none); ``base_url`` joins them with the trailing slash hera's ``urljoin`` needs.
    The token comes either from ``token`` (``ARGO_TOKEN``) or from ``token_file``, which the client
    re-reads when it changes (projected service-account tokens rotate).
    """

    server: str
    namespace: str
    base_href: str = "/"
    token: Secret | None = None
    token_file: Path | None = None
    verify: bool = True
    ca_bundle: Path | None = None
    timeout: float = 30.0
    retries: int = 3

    KEYS = frozenset({"server", "namespace", "token_file", "verify", "ca_bundle", "timeout", "retries",
                      "base_href"})

    @property
    def base_url(self) -> str:
        return self.server + self.base_href

    @classmethod
    def from_config(cls, config: Mapping[str, Any] | None, env: Mapping[str, str]) -> ArgoSettings:
        """Build from ``server.manager.argo`` with the Argo CLI's environment variables as defaults.

        Environment, read as the ``argo`` CLI reads it: ``ARGO_SERVER`` is ``host:port`` (a scheme
        is accepted too); without a scheme it is https unless ``ARGO_SECURE`` is exactly ``false``;
        ``ARGO_INSECURE_SKIP_VERIFY=true`` (exactly) turns certificate checks off; ``ARGO_BASE_HREF``
        is the path prefix; ``ARGO_TOKEN`` the token, with or without its ``Bearer `` prefix.
        ``ARGO_HTTP1`` needs no support: this client always speaks the HTTP/1 JSON API.
        """
        if config is not None and not isinstance(config, Mapping):
            raise ConfigurationError(f"{ARGO_KEY} must be a mapping, not {type(config).__name__}")
        config = dict(config or {})
        problems = Problems(ARGO_KEY)
        problems.unknown_keys(config, set(cls.KEYS), {
            "token": "never put a token in the configuration: use ARGO_TOKEN or token_file",
        })
        secure_default = env.get("ARGO_SECURE") != "false"

        server, href_from_server = None, "/"
        raw_server = config.get("server", env.get("ARGO_SERVER"))
        if raw_server is None or (isinstance(raw_server, str) and not raw_server.strip()):
            problems.add("server", "no Argo Server given: set it here or in ARGO_SERVER (host:port)")
        else:
            parsed = _parse_server(raw_server, secure_default)
            if isinstance(parsed, str):
                problems.add("server", parsed)
            else:
                server, href_from_server = parsed

        base_href = href_from_server
        raw_href = config.get("base_href", env.get("ARGO_BASE_HREF"))
        if raw_href not in (None, ""):
            href = _normalise_base_href(raw_href)
            if href is None:
                problems.add("base_href", f"must be a URL path such as /argo/, not {raw_href!r}")
            elif href_from_server != "/" and href != href_from_server:
                problems.add("base_href", f"{href!r} contradicts the path {href_from_server!r} of server")
            else:
                base_href = href

        namespace = config.get("namespace", env.get("ARGO_NAMESPACE"))
        if namespace is None or namespace == "":
            problems.add("namespace", "required: set it here or in ARGO_NAMESPACE")
        elif not isinstance(namespace, str) or not _DNS_LABEL.fullmatch(namespace):
            problems.add("namespace", f"must be a Kubernetes namespace (DNS-1123 label), not {namespace!r}")

        token_file = problems.path("token_file", config["token_file"]) if "token_file" in config else None
        raw_token = (env.get("ARGO_TOKEN") or "").strip()
        token = Secret(raw_token) if raw_token and token_file is None else None

        verify = True
        if "verify" in config:
            verify = problems.boolean("verify", config["verify"])
        elif env.get("ARGO_INSECURE_SKIP_VERIFY") == "true":
            verify = False
        ca_bundle = problems.path("ca_bundle", config["ca_bundle"]) if "ca_bundle" in config else None
        if ca_bundle is not None and verify is False:
            problems.add("ca_bundle", "is set but certificate verification is off (verify: false)")

        timeout = cls.timeout
        if "timeout" in config:
            timeout = problems.number("timeout", config["timeout"], integer=False, minimum=0.1, maximum=3600)
        retries = cls.retries
        if "retries" in config:
            retries = problems.number("retries", config["retries"], integer=True, minimum=0, maximum=10)

        problems.raise_if_any()
        return cls(server=server, namespace=namespace, base_href=base_href, token=token,
                   token_file=token_file, verify=verify, ca_bundle=ca_bundle, timeout=timeout,
                   retries=retries)


def _parse_server(value: Any, secure_default: bool) -> tuple[str, str] | str:
    """``(scheme://host[:port], base_href)`` or a message saying what is wrong."""
    if not isinstance(value, str):
        return f"must be a URL or host:port, not {value!r}"
    text = value.strip()
    if "://" not in text:
        text = ("https://" if secure_default else "http://") + text
    try:
        parts = urlsplit(text)
        port = parts.port  # raises ValueError for a port that is not a number in range
    except ValueError:
        return f"not a valid URL or host:port: {value!r}"
    if parts.scheme not in ("http", "https"):
        return f"scheme must be http or https, not {parts.scheme!r}"
    if not parts.hostname:
        return f"no host in {value!r}"
    if parts.username is not None or parts.password is not None:
        return "must not carry credentials: use ARGO_TOKEN or token_file"
    if parts.query or parts.fragment:
        return f"must not have a query or fragment: {value!r}"
    if "{" in text or "}" in text:
        return f"must not contain braces: {value!r}"
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    netloc = host if port is None else f"{host}:{port}"
    href = _normalise_base_href(parts.path) if parts.path not in ("", "/") else "/"
    if href is None:
        return f"has an invalid path: {value!r}"
    return f"{parts.scheme}://{netloc}", href


def _normalise_base_href(value: Any) -> str | None:
    """``argo``, ``/argo`` and ``/argo/`` all become ``/argo/``; ``None`` if not a plain path."""
    if not isinstance(value, str):
        return None
    path = "/" + value.strip().strip("/") + "/"
    path = path.replace("//", "/")
    if not _BASE_HREF.fullmatch(path) or any(seg in (".", "..") for seg in path.split("/")):
        return None
    return path


@dataclass(frozen=True)
class StorageSettings:
    """The S3 endpoint results live on; credentials come the boto3 way (env, profile, role)."""

    endpoint_url: str | None = None
    region: str | None = None
    bucket: str | None = None  # the artifact repository's bucket: holds key-only artifacts and bare keys
    presign_ttl: int = 3600
    addressing_style: str = "path"
    profile: str | None = None

    KEYS = ("endpoint_url", "region", "bucket", "presign_ttl", "addressing_style", "profile")

    def boto_options(self) -> dict[str, Any]:
        return {"endpoint_url": self.endpoint_url, "region": self.region, "presign_ttl": self.presign_ttl,
                "addressing_style": self.addressing_style, "profile": self.profile}


@dataclass(frozen=True)
class DismissSettings:
    """What ``DELETE /jobs/{id}`` does beyond recording the job ``dismissed``."""

    strategy: str = "terminate"  # Argo's terminate (no exit handler) or stop (exit handler runs)
    delete_workflow: bool = False  # delete a finished job's workflow from Argo
    delete_results: bool = False  # delete a job's S3 results

    KEYS = ("strategy", "delete_workflow", "delete_results")


@dataclass(frozen=True)
class LogSettings:
    """``logs``: where job logs are copied when a job ends, and which secrets never show in them.

    ``archive`` is an ``s3://bucket/prefix/`` (default: ``output_dir``); each step's log is written to
    ``<archive>logs/<jobID>/<step>.log``. ``redact`` names environment variables (of the pygeoapi
    process) whose values must never appear: a log line holding one is replaced; the Argo token
    always is.
    """

    archive: str | None = None
    redact: tuple[str, ...] = ()

    KEYS = ("archive", "redact")


@dataclass(frozen=True)
class ReconcilerSettings:
    """``reconciler``: the one background loop per deployment that follows Argo (reconciler.py).

    ``lease_seconds`` bounds how long the deployment goes without one after its process dies (another
    takes over within about that time); ``poll_seconds`` paces the safety-net poll beside the watch
    stream; a callback is tried ``callback_attempts`` times (backoff doubling from 1 s up to 5 min).
    """

    enabled: bool = True
    lease_seconds: float = 15.0
    poll_seconds: float = 30.0
    callback_attempts: int = 8

    KEYS = ("enabled", "lease_seconds", "poll_seconds", "callback_attempts")


# An HTTP header name (RFC 9110 token).
_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")


@dataclass(frozen=True)
class IsolationSettings:
    """``isolation``: per-user jobs (owners.py). ``header`` names the request header a trusted proxy
    sets to the authenticated user; unset (the default) turns isolation off."""

    header: str | None = None

    KEYS = ("header",)

    @property
    def enabled(self) -> bool:
        return self.header is not None


@dataclass(frozen=True)
class ManagerSettings:
    """``server.manager`` of the pygeoapi configuration."""

    argo: ArgoSettings
    connection: str = "sqlite:///pygeoapi-argo-jobs.db"
    output_dir: str | None = None
    storage: StorageSettings = StorageSettings()
    dismiss: DismissSettings = DismissSettings()
    describe_ttl: float = 60.0
    max_request_bytes: int = 1024 * 1024
    logs: LogSettings = LogSettings()
    reconciler: ReconcilerSettings = ReconcilerSettings()
    isolation: IsolationSettings = IsolationSettings()

    # ``name`` picks the plugin and ``processes`` is added by pygeoapi itself.
    KEYS = ("name", "processes", "connection", "output_dir", "argo", "storage", "dismiss", "describe_ttl",
            "max_request_bytes", "logs", "reconciler", "isolation")

    @classmethod
    def from_config(cls, config: Mapping[str, Any], env: Mapping[str, str] | None = None) -> ManagerSettings:
        problems = Problems("server.manager")
        problems.unknown_keys(config, set(cls.KEYS), {})
        connection = config.get("connection") or cls.connection
        if not isinstance(connection, str) or not re.match(r"(sqlite|postgresql)(\+\w+)?://", connection):
            problems.add("connection", f"must be a sqlite:/// or postgresql:// URL, not {connection!r}")
        output_dir = config.get("output_dir")
        if output_dir is not None and not (isinstance(output_dir, str) and output_dir.startswith("s3://")):
            problems.add("output_dir", f"must be an s3:// URL, not {output_dir!r}")

        storage = _section(problems, "storage", config.get("storage"), StorageSettings)
        if storage is not None:
            ttl = problems.number("storage.presign_ttl", storage.presign_ttl, integer=True, minimum=1,
                                  maximum=7 * 24 * 3600)
            if storage.addressing_style not in ("path", "virtual", "auto"):
                problems.add("storage.addressing_style", "must be path, virtual or auto")
            storage = StorageSettings(**{**storage.__dict__, "presign_ttl": int(ttl or 3600)})
        dismiss = _section(problems, "dismiss", config.get("dismiss"), DismissSettings)
        if dismiss is not None:
            if dismiss.strategy not in ("terminate", "stop"):
                problems.add("dismiss.strategy", f"must be terminate or stop, not {dismiss.strategy!r}")
            for key in ("delete_workflow", "delete_results"):
                problems.boolean(f"dismiss.{key}", getattr(dismiss, key))
        ttl = problems.number("describe_ttl", config.get("describe_ttl", cls.describe_ttl), integer=False,
                              minimum=0, maximum=86400)
        max_bytes = problems.number("max_request_bytes",
                                    config.get("max_request_bytes", cls.max_request_bytes),
                                    integer=True, minimum=1024, maximum=1024**3)
        logs = _section(problems, "logs", config.get("logs"), LogSettings)
        if logs is not None:
            if logs.archive is not None and not (isinstance(logs.archive, str)
                                                 and re.fullmatch(r"s3://[^/]+/(.+/)?", logs.archive)):
                problems.add("logs.archive", f"must be an s3://bucket/prefix/ URL, not {logs.archive!r}")
            redact = [logs.redact] if isinstance(logs.redact, str) else logs.redact
            if not isinstance(redact, list | tuple) or not all(
                    isinstance(n, str) and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", n) for n in redact):
                problems.add("logs.redact", "must be a list of environment variable names")
            else:
                logs = LogSettings(archive=logs.archive, redact=tuple(redact))
        reconciler = _section(problems, "reconciler", config.get("reconciler"), ReconcilerSettings)
        if reconciler is not None:
            reconciler = ReconcilerSettings(
                enabled=problems.boolean("reconciler.enabled", reconciler.enabled),
                lease_seconds=problems.number("reconciler.lease_seconds", reconciler.lease_seconds,
                                              integer=False, minimum=1, maximum=3600),
                poll_seconds=problems.number("reconciler.poll_seconds", reconciler.poll_seconds,
                                             integer=False, minimum=1, maximum=86400),
                callback_attempts=problems.number("reconciler.callback_attempts",
                                                  reconciler.callback_attempts,
                                                  integer=True, minimum=1, maximum=100))
        isolation = _section(problems, "isolation", config.get("isolation"), IsolationSettings)
        if isolation is not None and isolation.header is not None and not (
                isinstance(isolation.header, str) and _HEADER_NAME.fullmatch(isolation.header)):
            problems.add("isolation.header", f"must be an HTTP header name such as X-Forwarded-User, "
                                             f"not {isolation.header!r}")
        try:
            argo = ArgoSettings.from_config(config.get("argo"), os.environ if env is None else env)
        except ConfigurationError as err:
            problems.messages.append(err.message.removeprefix("invalid configuration:\n- "))
            argo = None
        problems.raise_if_any()
        return cls(argo=argo, connection=connection, output_dir=output_dir, storage=storage, dismiss=dismiss,
                   describe_ttl=ttl, max_request_bytes=max_bytes, logs=logs, reconciler=reconciler,
                   isolation=isolation)


@dataclass(frozen=True)
class ProcessSettings:
    """A process's ``processor`` section: which template it runs and how it is offered."""

    process_id: str
    workflow_template: str
    cluster_scope: bool = False
    entrypoint: str | None = None
    inputs: Mapping[str, Any] | None = None
    outputs: Mapping[str, Any] | None = None
    job_control_options: tuple[str, ...] | None = None
    sync_timeout: float = 60.0
    results_parameter: str = "results"  # EOX's workflows publish theirs as "urls"
    outputs_prefix: str | None = None  # s3:// prefix listed at success; {workflow_name}, {job_id}
    output_rules: tuple[OutputRule, ...] = ()
    results_format: str = "ogc"  # or "eodash-legacy": {"urls": [...]}
    stac: StacSettings | None = None
    allow_internal_requests: bool = False  # pygeoapi's key: callbacks to private addresses allowed
    schedules: tuple[ScheduleSettings, ...] = ()

    KEYS = ("name", "workflow_template", "cluster_scope", "entrypoint", "inputs", "outputs",
            "job_control_options", "sync_timeout", "results_parameter", "allow_internal_requests",
            "outputs_prefix", "output_rules", "results_format", "stac", "schedules")

    @classmethod
    def from_config(cls, process_id: str, resource: Mapping[str, Any]) -> ProcessSettings:
        problems = Problems(f"resources.{process_id}.processor")
        processor = resource.get("processor") or {}
        problems.unknown_keys(processor, set(cls.KEYS), {})
        template = processor.get("workflow_template")
        if not isinstance(template, str) or not template:
            problems.add("workflow_template", "required: the name of the WorkflowTemplate to run")
        cluster_scope = problems.boolean("cluster_scope", processor.get("cluster_scope", False))
        options = processor.get("job_control_options")
        if options is not None:
            if isinstance(options, str):
                options = [options]
            bad = [o for o in options if o not in ("sync-execute", "async-execute")]
            if bad or not options:
                problems.add("job_control_options", "a list of sync-execute and/or async-execute")
            options = tuple(options)
        for key in ("inputs", "outputs"):
            if processor.get(key) is not None and not isinstance(processor[key], Mapping):
                problems.add(key, "must be a mapping of names to descriptions")
        sync_timeout = problems.number("sync_timeout", processor.get("sync_timeout", cls.sync_timeout),
                                       integer=False, minimum=0, maximum=3600)
        outputs_prefix = processor.get("outputs_prefix")
        if outputs_prefix is not None and not _is_prefix(outputs_prefix):
            problems.add("outputs_prefix", f"must be an s3://bucket/path/ URL, not {outputs_prefix!r}")
        rules = _output_rules(problems, processor.get("output_rules"))
        if rules and outputs_prefix is None:
            problems.add("output_rules", "group the files of outputs_prefix: set outputs_prefix too")
        results_format = processor.get("results_format", cls.results_format)
        if results_format not in ("ogc", "eodash-legacy"):
            problems.add("results_format", f"must be ogc or eodash-legacy, not {results_format!r}")
        stac = StacSettings.from_config(problems, processor["stac"]) if processor.get("stac") else None
        internal = problems.boolean("allow_internal_requests",
                                    processor.get("allow_internal_requests", False))
        schedules = _schedules(problems, processor.get("schedules"))
        problems.raise_if_any()
        return cls(process_id=process_id, workflow_template=template, cluster_scope=bool(cluster_scope),
                   entrypoint=processor.get("entrypoint"), inputs=processor.get("inputs"),
                   outputs=processor.get("outputs"), job_control_options=options, sync_timeout=sync_timeout,
                   results_parameter=processor.get("results_parameter", cls.results_parameter),
                   outputs_prefix=outputs_prefix, output_rules=rules, results_format=results_format,
                   stac=stac, allow_internal_requests=bool(internal), schedules=schedules)


def _section[T](problems: Problems, key: str, config: Any, kind: type[T]) -> T | None:
    """A flat sub-section as its dataclass, unknown keys reported."""
    if config is None:
        return kind()
    if not isinstance(config, Mapping):
        problems.add(key, f"must be a mapping, not {type(config).__name__}")
        return None
    for name in sorted(set(config) - set(kind.KEYS)):
        problems.add(f"{key}.{name}", f"unknown key (known keys are {', '.join(kind.KEYS)})")
    return kind(**{k: v for k, v in config.items() if k in kind.KEYS})


# --- cron schedules (schedules.py) -----------------------------------------------------------

_SCHEDULE_ID = re.compile(r"[a-z0-9]([-a-z0-9]{0,28}[a-z0-9])?")
_CRON_FIELD = re.compile(r"[0-9A-Za-z*?,/-]+")
CRON_DESCRIPTORS = ("@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly")


@dataclass(frozen=True)
class ScheduleSettings:
    """One ``schedules`` entry of a process: runs it with ``inputs`` on ``cron`` (an Argo CronWorkflow).

    ``cron`` is what Argo accepts: five fields (minute hour day-of-month month day-of-week) or a
    descriptor such as ``@daily``; ``timezone`` an IANA zone (Argo's default is the controller's
    zone, usually UTC). The inputs are checked against the process description when schedules are
    synchronised, as an execute request's are: that needs the template, so not here.
    """

    id: str
    cron: str
    timezone: str | None = None
    inputs: Mapping[str, Any] | None = None
    suspend: bool = False

    KEYS = ("id", "cron", "timezone", "inputs", "suspend")


def _schedules(problems: Problems, value: Any) -> tuple[ScheduleSettings, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        problems.add("schedules", "must be a list of {id, cron, timezone, inputs, suspend}")
        return ()
    schedules, seen = [], set()
    for i, raw in enumerate(value):
        where = f"schedules[{i}]"
        if not isinstance(raw, Mapping):
            problems.add(where, "must be a mapping with id and cron")
            continue
        for name in sorted(set(raw) - set(ScheduleSettings.KEYS)):
            problems.add(f"{where}.{name}",
                         f"unknown key (known keys are {', '.join(ScheduleSettings.KEYS)})")
        before = len(problems.messages)
        sid, cron, timezone, inputs = raw.get("id"), raw.get("cron"), raw.get("timezone"), raw.get("inputs")
        if not isinstance(sid, str) or not _SCHEDULE_ID.fullmatch(sid):
            problems.add(f"{where}.id", "required: lowercase letters, digits and '-', at most 30 "
                                        f"characters, starting and ending alphanumeric (not {sid!r})")
        elif sid in seen:
            problems.add(f"{where}.id", f"{sid!r} is used twice")
        seen.add(sid)
        cron = cron.strip() if isinstance(cron, str) else cron
        if not isinstance(cron, str) or not (cron in CRON_DESCRIPTORS or (
                len(cron.split()) == 5 and all(_CRON_FIELD.fullmatch(f) for f in cron.split()))):
            problems.add(f"{where}.cron", "required: five cron fields such as '0 6 * * 1-5' or a "
                                          f"descriptor such as @daily, not {cron!r}")
        if timezone is not None:
            try:
                ZoneInfo(timezone)
            except (ZoneInfoNotFoundError, ValueError, TypeError):
                problems.add(f"{where}.timezone",
                             f"not an IANA time zone such as Europe/Vienna: {timezone!r}")
        if inputs is not None and not isinstance(inputs, Mapping):
            problems.add(f"{where}.inputs", "must be a mapping of input names to values, as in an execute "
                                            "request")
        suspend = problems.boolean(f"{where}.suspend", raw.get("suspend", False))
        if len(problems.messages) == before:
            schedules.append(ScheduleSettings(id=sid, cron=cron, timezone=timezone, inputs=dict(inputs or {}),
                                              suspend=bool(suspend)))
    return tuple(schedules)


# --- outputs from an S3 prefix, and STAC registration (issue 4) --------------------------------

_PREFIX_FIELDS = frozenset({"workflow_name", "job_id"})


def _is_prefix(value: Any) -> bool:
    """An ``s3://bucket/...`` URL whose only placeholders are ``{workflow_name}`` and ``{job_id}``."""
    if not isinstance(value, str) or not re.match(r"s3://[^/{}]+/", value):
        return False
    return set(re.findall(r"{([^{}]*)}", value)) <= _PREFIX_FIELDS and value.count("{") == value.count("}")


@dataclass(frozen=True)
class OutputRule:
    """One ``output_rules`` entry: files whose key below the prefix matches ``regex`` (``re.search``)
    form the output ``key`` (``\\1``/``\\g<name>`` take groups of the match); the first rule that
    matches a file wins."""

    key: str
    regex: re.Pattern[str]
    mimetype: str | None = None


def _output_rules(problems: Problems, value: Any) -> tuple[OutputRule, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        problems.add("output_rules", "must be a list of {key, regex, mimetype}")
        return ()
    rules = []
    for i, rule in enumerate(value):
        where = f"output_rules[{i}]"
        if not isinstance(rule, Mapping) or set(rule) - {"key", "regex", "mimetype"}:
            problems.add(where, "must be a mapping with key, regex and optionally mimetype")
            continue
        key, regex, mimetype = rule.get("key"), rule.get("regex"), rule.get("mimetype")
        if not isinstance(key, str) or not key:
            problems.add(f"{where}.key", "required: the output id")
        if mimetype is not None and not (isinstance(mimetype, str) and "/" in mimetype):
            problems.add(f"{where}.mimetype", f"must be a media type such as image/tiff, not {mimetype!r}")
        try:
            pattern = re.compile(regex) if isinstance(regex, str) else None
        except re.error as exc:
            pattern = None
            problems.add(f"{where}.regex", f"not a regular expression: {exc}")
        if pattern is None and not isinstance(regex, str):
            problems.add(f"{where}.regex", "required: a regular expression over the key below the prefix")
        if pattern is not None and isinstance(key, str) and key:
            rules.append(OutputRule(key=key, regex=pattern, mimetype=mimetype))
    return tuple(rules)


@dataclass(frozen=True)
class StacSettings:
    """Where a process's successful jobs are registered as STAC Items: a static catalog on S3
    (``catalog: s3://bucket/path/catalog.json``) or a STAC API with the Transactions extension
    (``api``), into ``collection``. ``area_input`` and ``datetime_inputs`` name the inputs that give
    an Item its geometry and time when the usual names (``bbox``, ``aoi``, ``datetime``, ...) do not."""

    catalog: str | None = None
    api: str | None = None
    collection: str = "pygeoapi-jobs"
    area_input: str | None = None
    datetime_inputs: tuple[str, ...] = ()  # one (instant or a/b interval) or two (start, end)
    timeout: float = 10.0
    retry_after: float = 60.0  # seconds between registration attempts of a job after a failure

    KEYS = ("catalog", "api", "collection", "area_input", "datetime_inputs", "timeout", "retry_after")

    @classmethod
    def from_config(cls, problems: Problems, config: Any) -> StacSettings | None:
        section = _section(problems, "stac", config, cls)
        if section is None:
            return None
        catalog, api = section.catalog, section.api
        if (catalog is None) == (api is None):
            problems.add("stac", "set exactly one of catalog (s3://.../catalog.json) or api (a STAC API URL)")
        if catalog is not None and not (isinstance(catalog, str) and re.match(r"s3://[^/]+/(.+/)?catalog\.json$",
                                                                               catalog)):
            problems.add("stac.catalog", f"must be s3://bucket/[path/]catalog.json, not {catalog!r}")
        if api is not None and not (isinstance(api, str) and re.match(r"https?://[^/]+", api)):
            problems.add("stac.api", f"must be an http(s) URL, not {api!r}")
        collection = section.collection
        if not (isinstance(collection, str) and re.fullmatch(r"[A-Za-z0-9._-]+", collection)):
            problems.add("stac.collection", f"must be a collection id ([A-Za-z0-9._-]), not {collection!r}")
        names = section.datetime_inputs
        names = (names,) if isinstance(names, str) else names
        if (not isinstance(names, list | tuple) or len(names) > 2
                or not all(isinstance(n, str) for n in names)):
            problems.add("stac.datetime_inputs", "must be one input name or a list of two (start, end)")
            names = ()
        timeout = problems.number("stac.timeout", section.timeout, integer=False, minimum=0.1, maximum=300)
        retry = problems.number("stac.retry_after", section.retry_after, integer=False, minimum=0,
                                maximum=86400)
        return cls(catalog=catalog, api=api.rstrip("/") if isinstance(api, str) else api,
                   collection=section.collection, area_input=section.area_input, datetime_inputs=tuple(names),
                   timeout=timeout or cls.timeout, retry_after=cls.retry_after if retry is None else retry)
