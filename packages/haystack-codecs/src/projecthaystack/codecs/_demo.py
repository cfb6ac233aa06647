"""The README's first command until the server exists: the codecs on a building we make.

Run with ``python -m projecthaystack.codecs._demo``.
"""

from __future__ import annotations

import datetime as dt

from projecthaystack.kinds import Coord, Grid, Marker, Number, Ref, tz_from_name

from . import csv, json, trio, zinc


def demo_grid() -> Grid:
    """A small site with an AHU and two points, built in code."""
    tz = tz_from_name("New_York")
    site = Ref("demo.site", "Demo HQ")
    ahu = Ref("demo.ahu1", "AHU-1")
    rows = [
        {
            "id": site,
            "dis": "Demo HQ",
            "site": Marker,
            "area": Number(45_000, "ft²"),
            "geoCoord": Coord(40.7128, -74.006),
            "tz": "New_York",
        },
        {"id": ahu, "dis": "AHU-1", "equip": Marker, "ahu": Marker, "siteRef": site},
        {
            "id": Ref("demo.dat", "AHU-1 Discharge Temp"),
            "dis": "Discharge Air Temp",
            "point": Marker,
            "sensor": Marker,
            "temp": Marker,
            "unit": "°F",
            "curVal": Number(55.2, "°F"),
            "equipRef": ahu,
            "siteRef": site,
            "tz": "New_York",
            "lastWrite": dt.datetime(2026, 11, 24, 9, 30, tzinfo=tz),
        },
    ]
    return Grid.from_rows(rows, meta={"dis": "Demo building"})


def main() -> None:
    """Print the demo grid in every format, and check that each lossless one reads back."""
    grid = demo_grid()
    for name, text in (
        ("Zinc", zinc.encode_grid(grid)),
        ("JSON (Haystack 4)", json.encode_grid(grid)),
        ("Trio", trio.encode_grid(grid)),
        ("CSV", csv.encode_grid(grid)),
    ):
        print(f"--- {name}\n{text.rstrip()}\n")
    assert zinc.decode_grid(zinc.encode_grid(grid)) == grid
    assert json.decode_grid(json.encode_grid(grid)) == grid
    assert json.decode_grid(json.encode_grid(grid, version=3), version=3) == grid
    print("Zinc, JSON v4 and JSON v3 each decoded back to the same grid.")


if __name__ == "__main__":
    main()
