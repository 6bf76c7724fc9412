"""A STAC Item per successful job: geometry from the area input, time from the date inputs, one
asset per output file; registered where the process's ``stac`` settings say (``stac_publish.py``).

Building an Item is pure (job record in, ``pystac.Item`` out). Registration never fails a job: a
failure is recorded in the job (``stac_error``, and a note in its status message) and retried
when the job is next read after ``retry_after`` seconds, or by ``register_pending`` (the
reconciler's hook), until it lands; the Item's URL is then kept in ``stac_item``.

Geometry rules: an OGC bbox (``{"bbox": [...]}`` or four/six numbers), a GeoJSON geometry, Feature
or FeatureCollection (their union), or ``lon``/``lat`` inputs (a point). A bbox whose west edge
lies east of its east edge, and a polygon with an edge longer than 180° of longitude, cross the
antimeridian and are split there into a MultiPolygon (RFC 7946 §3.1.9), their bbox keeping west >
east (STAC's rule). Invalid polygons (a bow tie) are repaired with ``make_valid``.
"""

from __future__ import annotations

import json
import logging
import posixpath
import time
from collections.abc import Mapping
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any

import numpy as np
import pystac
import shapely
from shapely import affinity
from shapely.errors import GEOSException
from shapely.geometry import MultiPolygon, Point, box, mapping, shape
from shapely.geometry.base import BaseGeometry

from pygeoapi_argo.errors import StacError, StacUnavailable, StorageError
from pygeoapi_argo.jobs import JobRecord
from pygeoapi_argo.settings import StacSettings

if TYPE_CHECKING:
    from pygeoapi_argo.manager import ArgoManager

LOGGER = logging.getLogger(__name__)

# Input names tried for the area, in this order, before any other input whose value is an area.
AREA_NAMES = ("bbox", "aoi", "area", "geometry", "extent", "region", "feature", "features", "polygon",
              "point", "location")
POINT_NAMES = (("lon", "lat"), ("longitude", "latitude"), ("x", "y"))
# Input names for time: one name holds an instant or an ``a/b`` interval, two names a start and an end.
DATETIME_NAMES = (("datetime",), ("start_datetime", "end_datetime"), ("start_date", "end_date"),
                  ("start", "end"), ("date_from", "date_to"), ("from", "to"), ("time_range",), ("date",),
                  ("time",))
FAILED_NOTE = " (STAC registration failed, retried later: "
IMAGE_TYPES = {"image/png", "image/jpeg", "image/webp"}


# --- geometry ----------------------------------------------------------------------------------


Area = tuple[BaseGeometry, list[float]]


def area(inputs: Mapping[str, Any] | None, name: str | None = None) -> Area | None:
    """The job's area as ``(geometry, bbox)`` in WGS 84 longitude/latitude, or ``None``."""
    inputs = inputs or {}
    if name is not None:
        candidates = [inputs.get(name)]
    else:
        candidates = [inputs[n] for n in AREA_NAMES if n in inputs]
        candidates += [v for k, v in inputs.items() if k not in AREA_NAMES]
    for value in candidates:
        found = _area(_plain(value))
        if found is not None:
            return found
    if name is None:
        for x_name, y_name in POINT_NAMES:
            x, y = _plain(inputs.get(x_name)), _plain(inputs.get(y_name))
            if _is_number(x) and _is_number(y):
                return Point(float(x), float(y)), [float(x), float(y), float(x), float(y)]
    return None


def _plain(value: Any) -> Any:
    """An OGC qualified value's ``value``, a JSON string's content, else the value itself."""
    if isinstance(value, dict) and "value" in value and "type" not in value:
        value = value["value"]
    if isinstance(value, str) and value.strip()[:1] in ("{", "["):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def _is_number(value: Any) -> bool:
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            return False
    return isinstance(value, int | float) and not isinstance(value, bool) and np.isfinite(value)


def _area(value: Any) -> Area | None:
    if isinstance(value, dict) and isinstance(value.get("bbox"), list) and "type" not in value:
        value = value["bbox"]
    if isinstance(value, list) and len(value) in (4, 6) and all(_is_number(v) for v in value):
        return _from_bbox([float(v) for v in value])
    if not isinstance(value, dict):
        return None
    kind = value.get("type")
    try:
        if kind == "FeatureCollection":
            parts = [shape(f["geometry"]) for f in value.get("features") or () if f.get("geometry")]
            if not parts:
                return None
            geometry = shapely.union_all([shapely.make_valid(p) for p in parts])
        elif kind == "Feature":
            if not value.get("geometry"):
                return None
            geometry = shape(value["geometry"])
        elif kind in ("Point", "MultiPoint", "LineString", "MultiLineString", "Polygon", "MultiPolygon",
                      "GeometryCollection"):
            geometry = shape(value)
        else:
            return None
    except (KeyError, TypeError, ValueError, AttributeError, GEOSException):
        return None
    return _normalised(geometry)


def _from_bbox(values: list[float]) -> Area:
    west, south, east, north = values if len(values) == 4 else (values[0], values[1], values[3], values[4])
    bbox = [west, south, east, north]
    if west == east and south == north:
        return Point(west, south), bbox
    if west > east:  # crosses the antimeridian
        return MultiPolygon([box(west, south, 180, north), box(-180, south, east, north)]), bbox
    return box(west, south, east, north), bbox


def _normalised(geometry: BaseGeometry) -> Area | None:
    """Split at the antimeridian, repair, and the bbox (west > east when split)."""
    if geometry.is_empty:
        return None
    if geometry.geom_type in ("Polygon", "MultiPolygon") and _crosses_antimeridian(geometry):
        shifted = shapely.transform(geometry, lambda xy: np.column_stack(
            [np.where(xy[:, 0] < 0, xy[:, 0] + 360, xy[:, 0]), xy[:, 1]]))
        shifted = _repaired(shifted)
        east = shifted.intersection(box(0, -90, 180, 90))
        west = affinity.translate(shifted.intersection(box(180, -90, 360, 90)), xoff=-360)
        parts = [p for g in (east, west) for p in _polygons(g)]
        minx, miny, maxx, maxy = shifted.bounds
        return MultiPolygon(parts), [minx, miny, maxx - 360 if maxx > 180 else maxx, maxy]
    geometry = _repaired(geometry)
    if geometry.is_empty:
        return None
    return geometry, list(geometry.bounds)


def _crosses_antimeridian(geometry: BaseGeometry) -> bool:
    """An edge spanning more than 180° of longitude only makes sense the short way round."""
    polygons = geometry.geoms if geometry.geom_type == "MultiPolygon" else [geometry]
    for polygon in polygons:
        xs = np.asarray(polygon.exterior.coords)[:, 0]
        if len(xs) > 1 and np.abs(np.diff(xs)).max() > 180:
            return True
    return False


def _repaired(geometry: BaseGeometry) -> BaseGeometry:
    """``make_valid`` keeps a bow tie's two triangles (and stray lines): keep the polygons."""
    if geometry.is_valid:
        return geometry
    fixed = shapely.make_valid(geometry)
    polygons = _polygons(fixed)
    if geometry.geom_type in ("Polygon", "MultiPolygon") and polygons:
        return polygons[0] if len(polygons) == 1 else MultiPolygon(polygons)
    return fixed


def _polygons(geometry: BaseGeometry) -> list[BaseGeometry]:
    if geometry.geom_type == "Polygon":
        return [geometry] if not geometry.is_empty else []
    if geometry.geom_type in ("MultiPolygon", "GeometryCollection"):
        return [p for g in geometry.geoms for p in _polygons(g)]
    return []


# --- time --------------------------------------------------------------------------------------


def times(inputs: Mapping[str, Any] | None,
          names: tuple[str, ...] = ()) -> tuple[datetime | None, datetime | None]:
    """``(start, end)`` from the date inputs (equal for an instant); ``(None, None)`` without any.
    A date without a time starts at 00:00 UTC, and ends at 23:59:59 when it is the end."""
    inputs = inputs or {}
    candidates = [names] if names else [n for n in DATETIME_NAMES if all(k in inputs for k in n)]
    for pair in candidates:
        values = [_plain(inputs.get(name)) for name in pair]
        if len(values) == 1:
            value = values[0]
            if isinstance(value, str) and "/" in value:
                values = value.split("/", 1)
            elif isinstance(value, list) and len(value) == 2:
                values = value
            else:
                values = [value, value]
        start, end = _instant(values[0], end=False), _instant(values[1], end=True)
        if start is not None or end is not None:
            return start or end, end or start
    return None, None


def _instant(value: Any, *, end: bool) -> datetime | None:
    if not isinstance(value, str) or value.strip() in ("", ".."):
        return None
    text = value.strip()
    try:
        if len(text) == 10:
            day = date.fromisoformat(text)
            moment = datetime(day.year, day.month, day.day, tzinfo=UTC)
            return moment + timedelta(days=1, seconds=-1) if end else moment
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


# --- the Item ----------------------------------------------------------------------------------


def build_item(record: JobRecord, settings: StacSettings, job_url: str | None) -> pystac.Item:
    """The job's Item: id = job id, in ``settings.collection``, assets keep ``s3://`` hrefs
    (presigned URLs expire; catalogs name objects), a ``via`` link back to the OGC job."""
    found = area(record.inputs, settings.area_input)
    # GeoJSON with lists, not shapely's tuples: the Item is JSON and schema-checked as such
    geometry, bbox = (json.loads(json.dumps(mapping(found[0]))), found[1]) if found else (None, None)
    start, end = times(record.inputs, settings.datetime_inputs)
    if start is None:
        start, end = record.started or record.created, record.finished or record.updated
    properties: dict[str, Any] = {
        "title": f"{record.process_id} job {record.job_id}",
        "created": _iso(record.created), "updated": _iso(record.finished or record.updated),
        "pygeoapi:process_id": record.process_id, "pygeoapi:job_id": record.job_id,
        "pygeoapi:inputs": record.inputs or {},  # stored masked by the manager: no secret
    }
    if start == end:
        item = pystac.Item(record.job_id, geometry, bbox, start, properties, collection=settings.collection)
    else:
        item = pystac.Item(record.job_id, geometry, bbox, None, properties, start_datetime=start,
                           end_datetime=end, collection=settings.collection)
    for key, asset in _assets(record.results or {}):
        item.add_asset(key, asset)
    if settings.api is not None:
        item.add_link(pystac.Link("collection", f"{settings.api}/collections/{settings.collection}",
                                  media_type="application/json"))
    else:  # the static catalog's layout: <collection>/<item id>/<item id>.json (stac_publish.py)
        for rel, href in (("root", "../../catalog.json"), ("parent", "../collection.json"),
                          ("collection", "../collection.json")):
            item.add_link(pystac.Link(rel, href, media_type="application/json"))
    if job_url:
        item.add_link(pystac.Link("via", job_url, media_type="application/json",
                                  title="OGC API - Processes job"))
    return item


def _assets(stored: Mapping[str, Any]) -> list[tuple[str, pystac.Asset]]:
    """One asset per file: the output id, numbered in the output's (sorted) order when it has several."""
    assets = []
    for output_id, entry in stored.items():
        urls = entry.get("urls") or ()
        width = len(str(len(urls)))
        for n, url in enumerate(urls, 1):
            key = output_id if len(urls) == 1 else f"{output_id}_{n:0{width}d}"
            kind = entry.get("mimetype")
            roles = ["overview"] if kind in IMAGE_TYPES else ["data"]
            assets.append((key, pystac.Asset(url, title=posixpath.basename(url.split("?", 1)[0]),
                                             media_type=kind, roles=roles)))
    return assets


def _iso(value: datetime | None) -> str | None:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ") if value else None


# --- registration ------------------------------------------------------------------------------


def register(manager: ArgoManager, record: JobRecord, *, retry: bool = False) -> JobRecord:
    """Register a successful job's Item if its process wants one and it has none yet; with
    ``retry`` (a job read again later) only once ``retry_after`` has passed since the last try."""
    return _register(manager, record, retry=retry)[0]


def _register(manager: ArgoManager, record: JobRecord, *, retry: bool) -> tuple[JobRecord, bool]:
    """``register``, and whether the destination is unavailable (its other Items would fail alike)."""
    conf = manager.process_settings.get(record.process_id)
    settings = conf.stac if conf is not None else None
    if settings is None or record.status != "successful" or record.stac_item is not None:
        return record, False
    if retry and record.stac_error is not None:
        last = record.updated.timestamp()
        if time.time() - last < settings.retry_after:
            return record, False
    from pygeoapi_argo import stac_publish

    base = (record.message or "").split(FAILED_NOTE, 1)[0]
    job_url = f"{manager.base_url}/jobs/{record.job_id}" if manager.base_url else None
    try:
        item = build_item(record, settings, job_url)
        location = stac_publish.publish(item, settings, storage=manager.storage, store=manager.store)
    except (StacError, StorageError, TimeoutError) as err:
        reason = getattr(err, "message", None) or str(err)
        LOGGER.warning("job %s: STAC registration failed, retried later: %s", record.job_id, reason)
        unavailable = isinstance(err, StacUnavailable | StorageError | TimeoutError)
        return manager.store.update(record.job_id, stac_error=reason,
                                    message=f"{base}{FAILED_NOTE}{reason})"), unavailable
    LOGGER.info("job %s: STAC Item registered at %s", record.job_id, location)
    return manager.store.update(record.job_id, stac_item=location, stac_error=None,
                                message=base or None), False


def register_pending(manager: ArgoManager, limit: int = 100) -> int:
    """Register the Items of successful jobs that have none yet (after a failure, or jobs that
    ended while no replica read them): the reconciler's periodic call. Returns how many landed.
    Jobs come least recently tried first, so Items an API keeps refusing do not crowd out the rest."""
    process_ids = [pid for pid, conf in manager.process_settings.items() if conf.stac is not None]
    if not process_ids:
        return 0
    landed = 0
    down: set[str] = set()  # processes whose destination did not answer in this round
    for record in manager.store.stac_pending(process_ids, limit):
        if record.process_id in down:
            continue  # the others would each wait for it as long: next round
        fresh, unavailable = _register(manager, record, retry=True)
        landed += fresh.stac_item is not None
        if unavailable:
            down.add(record.process_id)
    return landed


def item_link(record: JobRecord, presign: Any) -> dict[str, str] | None:
    """The job status link to its Item: a STAC API URL as is, a catalog's ``s3://`` object signed."""
    if record.stac_item is None:
        return None
    href = presign(record.stac_item) if record.stac_item.startswith("s3://") else record.stac_item
    return {"href": href, "rel": "related", "type": "application/geo+json",
            "title": "STAC Item of the results"}
