"""The row memo the writers share: a row written twice keeps its JSON v4 bytes and its
Zinc line, each used only where it is right (Zinc: the same columns)."""

import datetime as dt
import threading

import pytest

from projecthaystack.codecs import json, trio, zinc
from projecthaystack.kinds import (
    Col,
    DecodeError,
    FrozenDict,
    Grid,
    Marker,
    Number,
    Ref,
    tz_from_name,
)

NY = tz_from_name("New_York")


def _rows() -> list[FrozenDict]:
    return [
        FrozenDict(
            id=Ref(f"r{i}"),
            dis=f'Row "{i}" $x',
            point=Marker,
            curVal=Number(i + 0.5, "kW"),
            ts=dt.datetime(2024, 1, 2, 3, 4, 5, 123000, tzinfo=NY),
            custom=FrozenDict(a="x", n=Number(i)),
        )
        for i in range(4)
    ]


def _copy(rows: list[FrozenDict]) -> list[FrozenDict]:
    """Equal rows never written (their own memos), for the expected text."""
    return [FrozenDict(r) for r in rows]


def _grid(rows: list[FrozenDict], names: list[str]) -> Grid:
    return Grid.unchecked(FrozenDict(), tuple(Col(n) for n in names), tuple(rows))


NAMES = ["id", "dis", "point", "curVal", "ts", "custom"]


def test_a_row_written_twice_as_zinc_keeps_its_line_and_copies_it_after():
    rows = _rows()
    grid = _grid(rows, NAMES)
    expected = zinc.encode_grid(_grid(_copy(rows), NAMES))
    assert zinc.encode_grid(grid) == expected  # first write: rows marked as seen
    assert zinc.encode_grid(grid) == expected  # second: each row keeps its line
    kept = [r.memo.haystack_zinc for r in rows]
    assert [line.decode() for _, line in kept] == expected.split("\n")[2:-1]
    assert zinc.encode_grid_bytes(grid) == expected.encode()
    assert zinc.encode_grid(grid) == expected  # third: the kept lines, copied
    assert zinc.decode_grid(expected) == grid


def test_kept_zinc_lines_are_not_used_for_other_columns():
    rows = _rows()
    grid = _grid(rows, NAMES)
    for _ in range(3):
        zinc.encode_grid(grid)
    reordered = NAMES[::-1]
    wider = [*NAMES, "extra"]
    for names in (reordered, wider):
        got = zinc.encode_grid(_grid(rows, names))
        assert got == zinc.encode_grid(_grid(_copy(rows), names))
        assert zinc.decode_grid(got) == _grid(rows, names)
    # The rows now keep the last grid's lines; the first grid is still written right.
    assert zinc.encode_grid(grid) == zinc.encode_grid(_grid(_copy(rows), NAMES))


def test_a_row_kept_as_json_is_then_written_and_kept_as_zinc_and_both_stay_right():
    rows = _rows()
    grid = _grid(rows, NAMES)
    j = json.encode_grid_bytes(_grid(_copy(rows), NAMES))
    z = zinc.encode_grid(_grid(_copy(rows), NAMES))
    assert json.encode_grid_bytes(grid) == j
    assert json.encode_grid_bytes(grid) == j  # JSON bytes kept
    assert all(type(r.memo.haystack_json4) is bytes for r in rows)
    assert all(r.memo.haystack_zinc is None for r in rows)
    assert zinc.encode_grid(grid) == z  # the same memo takes the Zinc line too
    assert all(r.memo.haystack_zinc is not None for r in rows)
    assert json.encode_grid_bytes(grid) == j  # and the JSON bytes are still there
    assert zinc.encode_grid(grid) == z
    assert trio.encode_grid(grid) == trio.encode_grid(_grid(_copy(rows), NAMES))


def test_a_row_seen_by_zinc_is_kept_by_json_on_its_first_json_write():
    rows = _rows()
    grid = _grid(rows, NAMES)
    j = json.encode_grid_bytes(_grid(_copy(rows), NAMES))
    zinc.encode_grid(grid)  # seen, not checked for JSON
    assert json.encode_grid_bytes(grid) == j  # written before: kept
    assert [r.memo.haystack_json4 for r in rows] == [
        json.encode_value_bytes(r) for r in _copy(rows)
    ]
    assert json.encode_grid_bytes(grid) == j


def test_nested_grids_keep_lines_of_their_own_columns():
    inner_rows = [FrozenDict(a=Number(1), b="x"), FrozenDict(b="y")]
    inner = Grid.from_rows(inner_rows)
    rows = [FrozenDict(id=Ref("g"), grid=inner), FrozenDict(id=Ref("h"), grid=inner)]
    grid = _grid(rows, ["id", "grid"])
    expected = zinc.encode_grid(
        _grid(
            [
                FrozenDict(id=Ref("g"), grid=Grid.from_rows(_copy(inner_rows))),
                FrozenDict(id=Ref("h"), grid=Grid.from_rows(_copy(inner_rows))),
            ],
            ["id", "grid"],
        )
    )
    for _ in range(3):
        assert zinc.encode_grid(grid) == expected
    assert zinc.decode_grid(expected) == grid
    # The inner rows are kept with the inner grid's columns, and a grid of the same rows
    # in another column order is still written in its own order.
    assert inner_rows[0].memo.haystack_zinc[0] == ("a", "b")
    swapped = _grid(inner_rows, ["b", "a"])
    assert zinc.encode_grid(swapped) == 'ver:"3.0"\nb,a\n"x",1\n"y",\n'
    # JSON of the outer rows, kept after, holds the nested grid too.
    j = json.encode_grid_bytes(grid)
    assert json.encode_grid_bytes(grid) == j
    assert json.decode_grid(j) == grid


def test_mixed_grids_of_kept_and_fresh_rows():
    kept = _rows()
    keep = _grid(kept, NAMES)
    zinc.encode_grid(keep)
    zinc.encode_grid(keep)
    fresh = [FrozenDict(id=Ref("new"), dis="fresh")]
    for rows in ([*kept, *fresh], [*fresh, *kept], [kept[0], *fresh, kept[1]]):
        grid = _grid(rows, NAMES)
        assert zinc.encode_grid(grid) == zinc.encode_grid(_grid(_copy(rows), NAMES))
        assert json.encode_grid_bytes(grid) == json.encode_grid_bytes(_grid(_copy(rows), NAMES))


def test_another_tools_memo_is_no_hit_and_gives_way():
    rows = _rows()
    grid = _grid(rows, NAMES)
    expected = zinc.encode_grid(_grid(_copy(rows), NAMES))

    class Other:  # another tool's entry, with the writers' attribute names
        haystack_zinc = (tuple(NAMES), "not this")
        haystack_json4 = b'"not this"'
        plain = True

    for _ in range(3):
        zinc.encode_grid(grid)
    rows[1].memo = Other()
    rows[2].memo = "text"
    assert zinc.encode_grid(grid) == expected
    assert json.encode_grid_bytes(grid) == json.encode_grid_bytes(_grid(_copy(rows), NAMES))
    rows[0].memo = Other()
    assert zinc.encode_grid(grid) == expected


def test_a_zinc_error_leaves_no_memo_behind():
    row = FrozenDict(id=Ref("x"), stray=Marker)
    grid = Grid.unchecked(FrozenDict(), (Col("id"),), (row,))
    for _ in range(2):
        with pytest.raises(Exception, match="not a column"):
            zinc.encode_grid(grid)
    assert getattr(row, "memo", None) is None


def test_threads_writing_the_same_rows_in_two_column_orders_never_mix_them():
    rows = _rows()
    orders = [NAMES, NAMES[::-1]]
    expected = [zinc.encode_grid(_grid(_copy(rows), names)) for names in orders]
    grids = [_grid(rows, names) for names in orders]
    errors: list[str] = []

    def work(k: int) -> None:
        for i in range(200):
            j = (i + k) % 2
            if zinc.encode_grid(grids[j]) != expected[j]:
                errors.append(f"order {j}")

    threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []


# The readers' fast paths for one-off cells (Refs and plain strings) hand anything they
# do not prove to the full parser, which reads or reports it as before.


def test_zinc_cells_the_fast_path_does_not_prove_go_to_the_parser():
    grid = zinc.decode_grid('ver:"3.0"\nid,dis\n@a-1,"say \\"hi\\" $"\n@b "B",""\n')
    assert grid.rows[0] == {"id": Ref("a-1"), "dis": 'say "hi" $'}
    assert grid.rows[1] == {"id": Ref("b", "B"), "dis": ""}
    with pytest.raises(DecodeError) as err:
        zinc.decode_grid('ver:"3.0"\nid,dis\n@ok,"x"\n@bad#id,"y"\n')
    assert err.value.line == 4
    with pytest.raises(DecodeError):
        zinc.decode_grid('ver:"3.0"\nid,dis\n@ok,"unterminated\n')


def test_trio_refs_the_fast_path_does_not_prove_are_read_as_before():
    first, second = trio.decode_dicts('id:@a-1\nref:@b "B"\n---\nid:@a#b\nx:@\n')
    assert first == {"id": Ref("a-1"), "ref": Ref("b", "B")}
    assert second == {"id": "@a#b", "x": "@"}
