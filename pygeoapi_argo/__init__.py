"""pygeoapi process manager that runs OGC API - Processes jobs as Argo Workflows.

pygeoapi loads plugins by dotted name (``pygeoapi_argo.ArgoManager``), so the classes are
exported here; they are imported lazily so that ``pygeoapi_argo.emulator`` never pulls in
pygeoapi or the plugin.
"""

from importlib import import_module
from typing import Any

__all__ = ["ArgoManager", "ArgoProcessor"]

_EXPORTS = {"ArgoManager": "pygeoapi_argo.manager", "ArgoProcessor": "pygeoapi_argo.processor"}


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(import_module(_EXPORTS[name]), name)
    raise AttributeError(name)
