"""Workflow lifecycle: the emulator's workflow controller. (CONTRACT STUB: the engine fills it in.)"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from .state import Cluster, Key


class WorkflowFinished(Exception):
    """Stop/terminate of a completed workflow: the Argo Server answers 500 for it."""


@dataclass
class ControllerSettings:
    namespace: str = "argo"
    artifacts: str | None = None          # s3://bucket[/key-prefix]: the artifact repository
    s3_endpoint: str | None = None        # endpoint URL; credentials from the AWS_* environment
    key_format: str = "{{workflow.name}}/{{pod.name}}"
    secrets: dict[str, dict[str, str]] = field(default_factory=dict)  # secret name -> key -> value
    sandbox: Literal["bwrap", "none"] = "bwrap"


class Controller:
    def __init__(self, cluster: Cluster, settings: ControllerSettings) -> None:
        self.cluster = cluster
        self.settings = settings

    def start(self, key: Key) -> None:
        """Run the stored workflow ``key`` (metadata stamped, ``status`` empty) on a thread."""
        raise NotImplementedError

    def stop(self, key: Key, strategy: Literal["Stop", "Terminate"]) -> None:
        """Set ``spec.shutdown``; raise WorkflowFinished if the workflow has completed."""
        raise NotImplementedError

    def delete(self, key: Key) -> None:
        """End a running workflow silently and drop its pods; the server removes the object."""
        raise NotImplementedError

    def close(self) -> None:
        """Kill every running step: the emulator is shutting down."""
        raise NotImplementedError
