"""An Argo Server v3.7 emulator that really runs workflow steps as local processes.

A separate world from the plugin: it imports nothing from ``pygeoapi_argo`` outside this
package, so the plugin can only learn about it over HTTP, as it would about a real Argo Server.
"""
