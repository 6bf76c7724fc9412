"""``ArgoProcessor``: what pygeoapi knows of one process — its OGC description.

The description comes from the process's WorkflowTemplate (``processes.py``); the manager hands the
processor a private copy, because pygeoapi edits processor metadata in place while it answers.
Execution never happens here: the manager submits an Argo Workflow instead of calling ``execute``.
"""

from __future__ import annotations

from typing import Any

from pygeoapi.process.base import BaseProcessor, ProcessorExecuteError


class ArgoProcessor(BaseProcessor):
    def __init__(self, processor_def: dict, process_metadata: dict) -> None:
        super().__init__(processor_def, process_metadata)
        self.supports_outputs = True

    def execute(self, data: dict, outputs: dict | None = None) -> tuple[str, Any]:
        raise ProcessorExecuteError(
            user_msg="this process runs as an Argo Workflow: configure pygeoapi_argo.ArgoManager "
            "as server.manager")

    def __repr__(self) -> str:
        return f"<ArgoProcessor> {self.name}"
