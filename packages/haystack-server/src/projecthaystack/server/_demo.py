"""A demo building generated from a seed: sites, AHUs, VAVs, meters, points and history.

Everything is a pure function of the seed and the options, so two runs (or two workers)
build the same entities, and a sample's value depends only on its point and timestamp.
"""

from __future__ import annotations

import datetime as dt
import math
import random
import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from projecthaystack.kinds import Coord, Grid, Marker, Number, Ref, tz_from_name

from ._opapi import Action, OpContext
from ._ops import point_write
from ._store import HisChunk, Store

__all__ = ["DEMO_ACTIONS", "DemoBuilding", "demo_building"]

_SITES = (
    ("Riverside Office", "Richmond", "VA", "New_York", 37.54, -77.43, "office"),
    ("Harbor Lab", "Oakland", "CA", "Los_Angeles", 37.80, -122.27, "lab"),
    ("Lakeside School", "Madison", "WI", "Chicago", 43.07, -89.40, "school"),
    ("Summit Clinic", "Boulder", "CO", "Denver", 40.01, -105.27, "medical"),
    ("Bayfront Retail", "Tampa", "FL", "New_York", 27.95, -82.46, "retail"),
)


@dataclass
class DemoBuilding:
    """The generated entities and their history (point id → samples, oldest first)."""

    records: list[dict[str, Any]]
    history: dict[str, list[tuple[dt.datetime, Any]]] = field(default_factory=dict)

    @property
    def sample_count(self) -> int:
        """How many history samples there are in all."""
        return sum(len(s) for s in self.history.values())

    async def load(self, store: Store) -> None:
        """Put the entities and history into a store (idempotent: ids are fixed)."""
        await store.put_entities(self.records)
        await store.his_write(
            {
                pid: HisChunk(tuple(t for t, _ in samples), tuple(v for _, v in samples))
                for pid, samples in self.history.items()
            }
        )


@dataclass(frozen=True)
class _PointSpec:
    suffix: str
    dis: str
    tags: tuple[str, ...]
    kind: str
    unit: str | None
    base: float
    swing: float
    noise: float
    writable: bool = False


_AHU_POINTS = (
    _PointSpec(
        "dat",
        "Discharge Air Temp",
        ("discharge", "air", "temp", "sensor"),
        "Number",
        "°F",
        56,
        4,
        0.6,
    ),
    _PointSpec(
        "rat", "Return Air Temp", ("return", "air", "temp", "sensor"), "Number", "°F", 72, 2, 0.4
    ),
    _PointSpec(
        "oat", "Outside Air Temp", ("outside", "air", "temp", "sensor"), "Number", "°F", 60, 14, 1.0
    ),
    _PointSpec(
        "datsp",
        "Discharge Air Temp Setpoint",
        ("discharge", "air", "temp", "sp"),
        "Number",
        "°F",
        55,
        0,
        0,
        True,
    ),
    _PointSpec(
        "fan", "Supply Fan Run", ("discharge", "fan", "run", "cmd"), "Bool", None, 0, 0, 0, True
    ),
    _PointSpec(
        "damper",
        "Outside Air Damper",
        ("outside", "air", "damper", "cmd"),
        "Number",
        "%",
        35,
        25,
        3,
    ),
)
_VAV_POINTS = (
    _PointSpec(
        "zat", "Zone Air Temp", ("zone", "air", "temp", "sensor"), "Number", "°F", 72, 2.5, 0.5
    ),
    _PointSpec(
        "zatsp",
        "Zone Air Temp Setpoint",
        ("zone", "air", "temp", "sp"),
        "Number",
        "°F",
        72,
        0,
        0,
        True,
    ),
    _PointSpec(
        "flow",
        "Discharge Airflow",
        ("discharge", "air", "flow", "sensor"),
        "Number",
        "cfm",
        420,
        180,
        20,
    ),
    _PointSpec("damper", "Damper Position", ("damper", "cmd"), "Number", "%", 45, 30, 4),
)
_METER_POINTS = (
    _PointSpec("power", "Power", ("elec", "power", "sensor"), "Number", "kW", 180, 90, 8),
    _PointSpec("energy", "Energy", ("elec", "energy", "sensor"), "Number", "kWh", 0, 0, 0),
)


def _noise(seed: int, pid: str, minute: int) -> float:
    """A deterministic value in [-1, 1) from the point and time, without a Random per sample."""
    h = zlib.crc32(f"{seed}:{pid}:{minute}".encode())
    return (h / 2**31) - 1.0


def _sample(seed: int, pid: str, spec: _PointSpec, ts: dt.datetime, phase: float) -> Any:
    hours = ts.hour + ts.minute / 60
    occupied = ts.weekday() < 5 and 7 <= hours < 19
    if spec.kind == "Bool":
        return occupied
    daily = math.sin((hours - 9 + phase) / 24 * 2 * math.pi)
    minute = int(ts.timestamp() // 60)
    load = 1.0 if occupied else 0.35
    val = spec.base + spec.swing * daily * load + spec.noise * _noise(seed, pid, minute)
    return Number(round(val, 1), spec.unit)


def demo_building(
    seed: int = 1,
    *,
    sites: int = 2,
    ahus: int = 2,
    vavs: int = 5,
    days: int = 7,
    interval: dt.timedelta = dt.timedelta(minutes=15),
    end: dt.date | None = None,
) -> DemoBuilding:
    """A realistic building, the same for the same arguments.

    ``sites`` sites (up to 5) with an electric meter each, ``ahus`` AHUs per site and
    ``vavs`` VAVs per AHU; ``days`` of history at ``interval`` up to midnight ending
    ``end`` (tomorrow by default, so ``today`` and ``yesterday`` have data).

    >>> b = demo_building(seed=7, sites=1, ahus=1, vavs=2, days=1)
    >>> [r["dis"] for r in b.records if "site" in r]
    ['Riverside Office']
    >>> demo_building(seed=7, sites=1, ahus=1, vavs=2, days=1).records == b.records
    True
    """
    if not 1 <= sites <= len(_SITES):
        raise ValueError(f"sites must be 1 to {len(_SITES)}")
    if ahus < 0 or vavs < 0 or days < 0 or interval <= dt.timedelta(0):
        raise ValueError("counts and days must be >= 0, interval > 0")
    rng = random.Random(seed)
    records: list[dict[str, Any]] = []
    points: list[tuple[str, _PointSpec, str, float]] = []

    def add_points(
        parent: Ref, site: Ref, tz: str, specs: tuple[_PointSpec, ...], extra: Mapping[str, Any]
    ) -> None:
        for spec in specs:
            pid = f"{parent.id}.{spec.suffix}"
            rec: dict[str, Any] = {
                "id": Ref(pid, f"{parent.dis} {spec.dis}"),
                "dis": f"{parent.dis} {spec.dis}",
                "point": Marker,
                "his": Marker,
                "cur": Marker,
                "kind": spec.kind,
                "tz": tz,
                "equipRef": parent,
                "siteRef": site,
                **dict.fromkeys(spec.tags, Marker),
                **extra,
            }
            if spec.unit:
                rec["unit"] = spec.unit
            if spec.writable:
                rec["writable"] = Marker
            if spec.suffix == "energy":
                rec["hisTotalized"] = Marker
            records.append(rec)
            points.append((pid, spec, tz, rng.uniform(-1.5, 1.5)))

    for s in range(sites):
        name, city, state, tz, lat, lng, function = _SITES[s]
        site = Ref(f"demo.site{s + 1}", name)
        records.append(
            {
                "id": site,
                "dis": name,
                "site": Marker,
                "tz": tz,
                "geoCity": city,
                "geoState": state,
                "geoCountry": "US",
                "geoCoord": Coord(lat, lng),
                "area": Number(rng.randrange(20_000, 120_000, 500), "ft²"),
                "primaryFunction": function,
                "yearBuilt": Number(rng.randrange(1965, 2021)),
            }
        )
        meter = Ref(f"{site.id}.meter", f"{name} Main Meter")
        records.append(
            {
                "id": meter,
                "dis": meter.dis,
                "equip": Marker,
                "meter": Marker,
                "elec": Marker,
                "siteMeter": Marker,
                "siteRef": site,
            }
        )
        add_points(meter, site, tz, _METER_POINTS, {})
        for a in range(ahus):
            ahu = Ref(f"{site.id}.ahu{a + 1}", f"{name} AHU-{a + 1}")
            records.append(
                {
                    "id": ahu,
                    "dis": ahu.dis,
                    "equip": Marker,
                    "ahu": Marker,
                    "siteRef": site,
                    "elec": Marker,
                    "hotWaterHeat": Marker,
                    "chilledWaterCool": Marker,
                }
            )
            add_points(ahu, site, tz, _AHU_POINTS, {})
            for v in range(vavs):
                vav = Ref(f"{ahu.id}.vav{v + 1}", f"{name} VAV-{a + 1}-{v + 1:02d}")
                records.append(
                    {
                        "id": vav,
                        "dis": vav.dis,
                        "equip": Marker,
                        "vav": Marker,
                        "siteRef": site,
                        "airRef": ahu,
                        "equipRef": ahu,
                        "singleDuct": Marker,
                        "pressureDependent": Marker,
                    }
                )
                add_points(vav, site, tz, _VAV_POINTS, {})

    building = DemoBuilding(records)
    last_day = end or (dt.datetime.now(dt.UTC).date() + dt.timedelta(days=1))
    for pid, spec, tz_text, phase in points:
        if spec.writable and spec.kind == "Number":
            continue  # setpoints are written through pointWrite, not sensed
        zone = tz_from_name(tz_text)
        stop = dt.datetime.combine(last_day, dt.time(0), tzinfo=zone)
        ts = stop - dt.timedelta(days=days)
        samples: list[tuple[dt.datetime, Any]] = []
        total = 0.0
        while ts < stop:
            if spec.suffix == "energy":
                kw = _sample(seed, pid[:-6] + "power", _METER_POINTS[0], ts, phase).val
                total += kw * interval.total_seconds() / 3600
                samples.append((ts, Number(round(total, 1), "kWh")))
            else:
                samples.append((ts, _sample(seed, pid, spec, ts, phase)))
            ts = (ts.astimezone(dt.UTC) + interval).astimezone(zone)
        building.history[pid] = samples
    for rec in records:
        his = building.history.get(rec["id"].id)
        if his and "cur" in rec:
            rec["curVal"] = his[-1][1]
            rec["curStatus"] = "ok"
    return building


async def _override(
    ctx: OpContext, target: Mapping[str, Any], args: Mapping[str, Any]
) -> Grid | None:
    row = {"id": target["id"], "level": Number(8), "val": args.get("val"), "who": ctx.user.username}
    if args.get("duration") is not None:
        row["duration"] = args["duration"]
    return await point_write(ctx, Grid.from_rows([row]))


async def _release(
    ctx: OpContext, target: Mapping[str, Any], args: Mapping[str, Any]
) -> Grid | None:
    return await point_write(ctx, Grid.from_rows([{"id": target["id"], "level": Number(8)}]))


DEMO_ACTIONS: dict[str, Action] = {"override": _override, "release": _release}
"""Actions the demo server registers: ``override`` (level 8, ``val`` and an optional
``duration``) and ``release`` (level 8 back to auto), on writable points."""
