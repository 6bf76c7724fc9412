"""Where Items go: a static STAC catalog on S3, or a STAC API with the Transactions extension.

Both are idempotent, so a registration retried after a lost answer lands once:
- API: ``POST /collections/{c}/items``; a 409 (the Item exists) becomes ``PUT .../items/{id}``.
  The collection is created first when the API does not know it.
- Static catalog (self-contained, pystac's best-practice layout, relative links)::

      catalog.json
      <collection>/collection.json
      <collection>/<item id>/<item id>.json

  The Item file is written first (its own object: no race). Adding its link to the collection
  (and the collection to the catalog) is a read-modify-write of one object, which two jobs finishing
  at once would race on. S3 conditional writes would make it safe, but ``rclone serve s3`` (1.75)
  accepts a PUT with a non-matching ``If-Match`` or ``If-None-Match: *`` and overwrites (checked), so
  the update runs under a lock row in the job store that every replica shares (``JobStore.lock``).
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import pystac
import requests

from pygeoapi_argo.errors import StacError, StacUnavailable, StorageError
from pygeoapi_argo.jobs import JobStore
from pygeoapi_argo.settings import StacSettings
from pygeoapi_argo.storage import Storage

STAC_JSON = "application/json"
GEOJSON = "application/geo+json"


def publish(item: pystac.Item, settings: StacSettings, *, storage: Storage, store: JobStore) -> str:
    """Register ``item``; returns where it now lives (an API URL, or the ``s3://`` URL of its file)."""
    if settings.api is not None:
        return _to_api(item, settings)
    return _to_catalog(item, settings, storage, store)


# --- STAC API (Transactions extension) ---------------------------------------------------------


def _to_api(item: pystac.Item, settings: StacSettings) -> str:
    items = f"{settings.api}/collections/{settings.collection}/items"
    body = item.to_dict(include_self_link=False, transform_hrefs=False)
    with requests.Session() as session:
        _ensure_api_collection(session, settings, item)
        answer = _call(session, "POST", items, body, settings.timeout)
        if answer.status_code == 409:
            answer = _call(session, "PUT", f"{items}/{item.id}", body, settings.timeout)
        _check(answer, f"storing Item {item.id}")
    return f"{items}/{item.id}"


def _ensure_api_collection(session: requests.Session, settings: StacSettings, item: pystac.Item) -> None:
    url = f"{settings.api}/collections/{settings.collection}"
    answer = _call(session, "GET", url, None, settings.timeout)
    if answer.status_code == 404:
        created = _call(session, "POST", f"{settings.api}/collections",
                        _collection(settings.collection, item).to_dict(include_self_link=False,
                                                                       transform_hrefs=False),
                        settings.timeout)
        if created.status_code != 409:  # created meanwhile by another replica: fine
            _check(created, f"creating collection {settings.collection}")
    else:
        _check(answer, f"reading collection {settings.collection}")


def _call(session: requests.Session, method: str, url: str, body: Any, timeout: float) -> requests.Response:
    try:
        return session.request(method, url, json=body, timeout=timeout)
    except requests.RequestException as exc:
        problem = f"STAC API unreachable ({type(exc).__name__}) at {method} {_path(url)}"
        raise StacUnavailable(problem) from None


def _check(answer: requests.Response, doing: str) -> None:
    if not answer.ok:
        detail = answer.text[:200].replace("\n", " ")
        kind = StacUnavailable if answer.status_code >= 500 else StacError  # down, or refusing this Item
        raise kind(f"STAC API answered {answer.status_code} {doing}: {detail}")


def _path(url: str) -> str:
    """A URL without its query: messages never carry what a query might hold."""
    return url.split("?", 1)[0]


# --- static catalog on S3 ----------------------------------------------------------------------


def _to_catalog(item: pystac.Item, settings: StacSettings, storage: Storage, store: JobStore) -> str:
    root_url = settings.catalog
    base = root_url.rsplit("/", 1)[0]
    collection_id = settings.collection
    collection_url = f"{base}/{collection_id}/collection.json"
    item_url = f"{base}/{collection_id}/{item.id}/{item.id}.json"

    _write(storage, item_url, item.to_dict(include_self_link=False, transform_hrefs=False), GEOJSON)

    with store.lock(f"stac-catalog:{root_url}", ttl=max(60.0, 6 * settings.timeout)):
        try:
            _update_collection(item, storage, root_url, collection_id, collection_url)
        except (KeyError, IndexError, TypeError, ValueError, AttributeError) as exc:
            # a catalog someone edited by hand: a registration failure (retried), never a crash
            raise StacError(f"{collection_url} or {root_url} is not a STAC document we can update "
                            f"({type(exc).__name__}: {exc})") from None
    return item_url


def _update_collection(item: pystac.Item, storage: Storage, root_url: str, collection_id: str,
                       collection_url: str) -> None:
    """Add ``item`` to its collection (created, and linked from the root, on first use); under the lock."""
    collection = _read(storage, collection_url)
    if collection is None:
        collection = _collection(collection_id, item).to_dict(include_self_link=False, transform_hrefs=False)
        collection["links"] = [
            {"rel": "root", "href": "../catalog.json", "type": STAC_JSON},
            {"rel": "parent", "href": "../catalog.json", "type": STAC_JSON},
        ]
        _add_child(storage, root_url, collection_id)
    href = f"./{item.id}/{item.id}.json"
    if not any(link.get("rel") == "item" and link.get("href") == href for link in collection["links"]):
        collection["links"].append({"rel": "item", "href": href, "type": GEOJSON})
    _extend(collection["extent"], item)
    _write(storage, collection_url, collection, STAC_JSON)


def _add_child(storage: Storage, root_url: str, collection_id: str) -> None:
    """The root catalog, created on first use, gains a child link to the new collection."""
    root = _read(storage, root_url)
    if root is None:
        catalog = pystac.Catalog("pygeoapi-argo", "Results of OGC API - Processes jobs run on Argo Workflows")
        root = catalog.to_dict(include_self_link=False, transform_hrefs=False)
        root["links"] = [{"rel": "root", "href": "./catalog.json", "type": STAC_JSON}]
    href = f"./{collection_id}/collection.json"
    if not any(link.get("rel") == "child" and link.get("href") == href for link in root["links"]):
        root["links"].append({"rel": "child", "href": href, "type": STAC_JSON})
        _write(storage, root_url, root, STAC_JSON)


def _collection(collection_id: str, item: pystac.Item) -> pystac.Collection:
    """A new collection whose extent is the first Item's."""
    bbox = item.bbox or [-180.0, -90.0, 180.0, 90.0]
    start, end = _interval(item)
    extent = pystac.Extent(pystac.SpatialExtent([bbox]), pystac.TemporalExtent([[start, end]]))
    return pystac.Collection(collection_id, f"Results of jobs registered by pygeoapi-argo ({collection_id})",
                             extent, license="other")


def _interval(item: pystac.Item) -> tuple[datetime, datetime]:
    common = item.common_metadata
    start = item.datetime or common.start_datetime
    return start, item.datetime or common.end_datetime


def _extend(extent: dict[str, Any], item: pystac.Item) -> None:
    """Grow a collection's extent (dict form) to hold ``item``; a bbox across the antimeridian
    (west > east) makes the spatial extent the whole world rather than a wrong box."""
    if item.bbox:
        current = extent["spatial"]["bbox"][0]
        if item.bbox[0] > item.bbox[2] or current[0] > current[2]:
            merged = [-180.0, min(current[1], item.bbox[1]), 180.0, max(current[3], item.bbox[3])]
        else:
            merged = [min(current[0], item.bbox[0]), min(current[1], item.bbox[1]),
                      max(current[2], item.bbox[2]), max(current[3], item.bbox[3])]
        extent["spatial"]["bbox"][0] = merged
    start, end = _interval(item)
    interval = extent["temporal"]["interval"][0]
    old_start, old_end = (datetime.fromisoformat(v) if v else None for v in interval)
    interval[0] = pystac.utils.datetime_to_str(min(start, old_start) if old_start else start)
    interval[1] = pystac.utils.datetime_to_str(max(end, old_end) if old_end else end)


def _read(storage: Storage, url: str) -> dict[str, Any] | None:
    try:
        return json.loads(storage.read(url))
    except StorageError as err:
        if "NoSuchKey" in err.message or "(HTTP 404)" in err.message:
            return None
        raise


def _write(storage: Storage, url: str, document: dict[str, Any], media_type: str) -> None:
    storage.write(url, json.dumps(document, separators=(",", ":")).encode(), media_type)

