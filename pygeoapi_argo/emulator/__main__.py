"""``python -m pygeoapi_argo.emulator``: serve the Argo Server emulator.

The first line on stdout is ``listening http://HOST:PORT`` (with the real port when ``--port 0``),
so a parent process learns where to connect; SIGTERM and SIGINT stop it, killing running steps.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
from pathlib import Path

import yaml
from werkzeug.serving import make_server

from .controller import Controller, ControllerSettings
from .cron import CronClock, CronController, CronWorkflowService
from .server import ArgoError, ArgoServer
from .state import Cluster


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m pygeoapi_argo.emulator",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=2746, help="0 picks a free port")
    parser.add_argument("--namespace", default="argo", help="namespace of the loaded WorkflowTemplates")
    parser.add_argument("--templates", type=Path, help="folder of (Cluster)WorkflowTemplate YAML")
    parser.add_argument("--artifacts", help="artifact repository: s3://bucket[/key-prefix]")
    parser.add_argument("--s3-endpoint", help="S3 endpoint URL (credentials from the AWS_* environment)")
    parser.add_argument("--secrets", type=Path, help="YAML file {secretName: {key: value}} for secretKeyRef")
    parser.add_argument("--token", help="require 'Authorization: Bearer TOKEN' on every /api request")
    parser.add_argument("--token-file", type=Path,
                        help="like --token, the token read from this file on every request (rotate it)")
    parser.add_argument("--sandbox", choices=("bwrap", "none"), default="bwrap",
                        help="how steps are isolated")
    parser.add_argument("--cron-tick", type=float, metavar="SECONDS",
                        help="test aid, not Argo: one cron minute lasts SECONDS (CronWorkflows fire fast)")
    return parser.parse_args(argv)


def read_secrets(path: Path | None) -> dict[str, dict[str, str]]:
    if path is None:
        return {}
    data = yaml.safe_load(path.read_text()) or {}
    if not isinstance(data, dict) or not all(isinstance(v, dict) for v in data.values()):
        raise SystemExit(f"{path}: expected a mapping {{secretName: {{key: value}}}}")
    return {str(name): {str(k): str(v) for k, v in keys.items()} for name, keys in data.items()}


def load_templates(server: ArgoServer, folder: Path, namespace: str) -> None:
    """Every YAML document in the folder must be a (Cluster)WorkflowTemplate: a typo fails the start."""
    for path in sorted([*folder.glob("*.yaml"), *folder.glob("*.yml")]):
        for document in yaml.safe_load_all(path.read_text()):
            if document is None:
                continue
            try:
                server.load_template(document, namespace)
            except ArgoError as error:
                raise SystemExit(f"{path}: {error.message}") from None


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.templates is not None and not args.templates.is_dir():
        raise SystemExit(f"--templates {args.templates}: not a folder")
    cluster = Cluster()
    settings = ControllerSettings(namespace=args.namespace, artifacts=args.artifacts,
                                  s3_endpoint=args.s3_endpoint, secrets=read_secrets(args.secrets),
                                  sandbox=args.sandbox)
    controller = Controller(cluster, settings)
    app = ArgoServer(cluster, controller, token=args.token, namespace=args.namespace,
                     token_file=args.token_file)
    cron = CronController(cluster, app, controller, CronClock(args.cron_tick))
    app.add_routes(CronWorkflowService(app, cron.wake).routes())
    if args.templates is not None:
        load_templates(app, args.templates, args.namespace)
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no line per request on stderr
    httpd = make_server(args.host, args.port, app, threaded=True)

    def stop(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    print(f"listening http://{args.host}:{httpd.server_port}", flush=True)
    cron.start()
    try:
        httpd.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        cron.close()
        controller.close()
        httpd.server_close()
    sys.exit(0)


if __name__ == "__main__":
    main()
