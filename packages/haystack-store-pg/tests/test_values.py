"""Entities with values PostgreSQL cannot store as given round-trip exactly, or are
refused with a clear error and nothing written."""

from __future__ import annotations

import math
from typing import Any

import pytest

from projecthaystack.filter import parse
from projecthaystack.kinds import EncodeError, FrozenDict, Number, Ref
from projecthaystack.stores.pg import PgStore
from projecthaystack.stores.pg._jsonb import MAX_DEPTH


def nested(depth: int) -> Any:
    value: Any = "bottom"
    for _ in range(depth):
        value = [value]
    return value


@pytest.mark.anyio
async def test_values_jsonb_refuses_round_trip(store: PgStore) -> None:
    record = {
        "id": Ref("a"),
        "nul": "a\x00b",
        "ones": "\x01\x01\x00",
        "slash": "\\u0000 is not a NUL",
        "nan": Number(math.nan),
        "inf": Number(math.inf, "kW"),
        "ninf": Number(-math.inf),
        "negzero": Number(-0.0),
        "long": "é" * 2_000_000,
        "deep": nested(MAX_DEPTH),
        "dict": FrozenDict({"inner": "\x00", "n": Number(1e308)}),
    }
    await store.put_entities([record])
    (got,) = await store.get_entities(["a"])
    assert got == record
    assert await store.query(parse('nul == "a\\u0000b"')) == [record]
    assert await store.query(parse('slash == "\\\\u0000 is not a NUL"')) == [record]
    assert await store.query(parse("inf > 1e308kW")) == [record]
    assert await store.query(parse("nan == 0 or nan < 0 or nan > 0")) == []
    updated = await store.update_entity("a", {"nul": "\x00\x00"})
    assert updated is not None and updated["nul"] == "\x00\x00"


@pytest.mark.anyio
async def test_too_deep_is_refused_whole(store: PgStore) -> None:
    with pytest.raises(EncodeError, match="deep"):
        await store.put_entities(
            [{"id": Ref("ok")}, {"id": Ref("deep"), "v": nested(MAX_DEPTH + 1)}]
        )
    assert await store.count_entities() == 0
    await store.put_entities([{"id": Ref("ok")}])
    with pytest.raises(EncodeError, match="deep"):
        await store.update_entity("ok", {"v": nested(MAX_DEPTH + 1)})
    assert await store.get_entities(["ok"]) == [{"id": Ref("ok")}]
