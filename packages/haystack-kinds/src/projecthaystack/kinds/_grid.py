"""Grids: meta, columns with meta, and rows; immutable once built."""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any, NoReturn, overload

from ._convert import to_python
from ._errors import InvalidValueError
from ._scalars import is_tag_name

__all__ = ["Col", "FrozenDict", "Grid", "GridBuilder"]


class FrozenDict(dict[str, Any]):
    """A ``dict`` that refuses changes; grid meta and rows are FrozenDicts.

    It is a real ``dict`` (``isinstance(row, dict)`` holds, every reading method works,
    JSON libraries accept it); only the methods that would change it raise ``TypeError``.
    ``dict(row)`` gives a mutable copy.

    >>> row = FrozenDict(dis="AHU-1")
    >>> row["dis"]
    'AHU-1'
    >>> row["dis"] = "x"
    Traceback (most recent call last):
    ...
    TypeError: FrozenDict is immutable
    """

    # _keys memoises the row's shape for grids (see _clean_shape), sound because the dict
    # never changes; like memo, it is no part of the value: not compared, not pickled.
    __slots__ = {
        "_keys": "The shape of the row, for grids (private to this package).",
        "memo": """A place for one result that a tool derives from this dict; unset until
        one does.

        A FrozenDict never changes, so what is derived from it stays true for its life: a
        tool that would otherwise compute a result again and again (an encoder, its
        output) may keep it here.  This package never reads or writes it, and it is no
        part of the value (not compared, copied or pickled).  Read it with
        ``getattr(d, "memo", None)``; store only objects of a type your tool defines, so
        that you tell your entries from another tool's, and expect to lose yours to
        another tool now and then.""",
    }
    _keys: int | tuple[str, ...]
    memo: Any

    def _immutable(self, *args: object, **kwargs: object) -> NoReturn:
        raise TypeError("FrozenDict is immutable")

    __setitem__ = _immutable
    __delitem__ = _immutable
    __ior__ = _immutable
    clear = _immutable
    pop = _immutable
    popitem = _immutable
    setdefault = _immutable
    update = _immutable

    def __reduce__(self) -> tuple[type[FrozenDict], tuple[dict[str, Any]]]:
        return (FrozenDict, (dict(self),))

    def __copy__(self) -> FrozenDict:
        return self

    def __deepcopy__(self, memo: object) -> FrozenDict:
        return self

    def __repr__(self) -> str:
        return f"FrozenDict({dict.__repr__(self)})"


_EMPTY: FrozenDict = FrozenDict()

# The tag-name tuples of the rows seen, numbered: a row's memo is its shape's number.
# Bounded (rows can come from clients) in shapes and in names held: past the bound a
# row's memo is its own tuple, slower for from_rows but right.
_SHAPES: list[tuple[str, ...]] = []
_SHAPE_NUMBERS: dict[tuple[str, ...], int] = {}
_MAX_SHAPES = 1 << 16
_MAX_SHAPE_NAMES = 1 << 20
_shape_names = 0
_SHAPES_LOCK = threading.Lock()


# The shape of a FrozenDict that holds a null: it must be copied without it first.
_NULLS = -1


def _check_names(names: Iterable[Any], what: str | int) -> None:
    for name in names:
        if not isinstance(name, str) or not is_tag_name(name):
            where = f"row {what}" if type(what) is int else what
            raise InvalidValueError(f"invalid tag name {name!r} in {where}")


def _clean_shape(row: FrozenDict, what: str | int) -> int | tuple[str, ...]:
    """The number of ``row``'s shape (its tag names in order), or ``_NULLS``.

    Checks the names on first sight (``InvalidValueError`` naming ``what``, a row's
    number or a description); memoised on the row, which never changes.  Anyone can
    build a FrozenDict, so one is never trusted unseen."""
    global _shape_names
    shape: int | tuple[str, ...] | None = getattr(row, "_keys", None)
    if shape is None:
        keys = tuple(row)
        # A numbered shape's names were checked when it got its number.
        shape = _NULLS if None in row.values() else _SHAPE_NUMBERS.get(keys)
        if shape is None:
            _check_names(keys, what)
            with _SHAPES_LOCK:  # a number must name one shape, whatever the threads do
                shape = _SHAPE_NUMBERS.get(keys)
                room = len(_SHAPES) < _MAX_SHAPES and _shape_names + len(keys) <= _MAX_SHAPE_NAMES
                if shape is None and room:
                    shape = _SHAPE_NUMBERS[keys] = len(_SHAPES)
                    _SHAPES.append(keys)
                    _shape_names += len(keys)
            if shape is None:
                shape = keys
        object.__setattr__(row, "_keys", shape)
    return shape


def _without_nulls(mapping: Mapping[str, Any]) -> FrozenDict:
    return FrozenDict((k, v) for k, v in mapping.items() if v is not None)


def _frozen(mapping: Mapping[str, Any] | None, what: str | int) -> FrozenDict:
    if not mapping:
        return _EMPTY
    if type(mapping) is FrozenDict:
        if _clean_shape(mapping, what) == _NULLS:
            mapping = _without_nulls(mapping)
            _check_names(mapping, what)
        return mapping
    _check_names(mapping, what)
    return _without_nulls(mapping)


class Col:
    """A grid column: a name and its meta.

    >>> Col("temp", {"unit": "°F"}).meta["unit"]
    '°F'
    """

    __slots__ = ("meta", "name")

    name: str
    meta: FrozenDict

    def __init__(self, name: str, meta: Mapping[str, Any] | None = None) -> None:
        if not isinstance(name, str) or not is_tag_name(name):
            raise InvalidValueError(f"invalid column name {name!r}")
        object.__setattr__(self, "name", name)
        object.__setattr__(self, "meta", _frozen(meta, f"meta of column {name!r}"))

    @classmethod
    def unchecked(cls, name: str, meta: FrozenDict) -> Col:
        """A column from parts that already keep the rules, without checking them.

        For decoders that have checked the name and built ``meta`` themselves: ``name``
        is a valid tag name and ``meta`` a :class:`FrozenDict` without nulls and with
        valid tag names.  Nothing is checked; user data belongs in :class:`Col`.

        >>> Col.unchecked("temp", FrozenDict(unit="°F")).meta["unit"]
        '°F'
        """
        col = object.__new__(cls)
        col.name = name
        col.meta = meta
        return col

    def __setattr__(self, name: str, value: object) -> None:
        if hasattr(self, "meta"):
            raise AttributeError("Col is immutable")
        object.__setattr__(self, name, value)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Col):
            return NotImplemented
        return self.name == other.name and self.meta == other.meta

    def __hash__(self) -> int:
        return hash(self.name)

    def __repr__(self) -> str:
        return f"Col({self.name!r}, {dict(self.meta)!r})" if self.meta else f"Col({self.name!r})"


# Columns without meta, one per name (a Col never changes): grids of stored entities
# ask for the same few dozen over and over.  Bounded like _SHAPES.
_PLAIN_COLS: dict[str, Col] = {}


def _plain_col(name: str) -> Col:
    col = _PLAIN_COLS.get(name)
    if col is None:
        col = Col(name)  # checks the name
        if len(_PLAIN_COLS) < _MAX_SHAPES:
            _PLAIN_COLS[name] = col
    return col


class Grid:
    """A two-dimensional table: grid meta, columns (each with meta) and rows.

    Rows are :class:`FrozenDict` objects holding only their non-null cells, so
    ``row.get("col")`` is ``None`` for an empty cell.  Equality compares meta, the set of
    columns with their meta, and the rows in order; the order of columns is ignored.

    >>> from projecthaystack.kinds import Marker, Ref
    >>> g = Grid.from_rows([{"id": Ref("s"), "site": Marker}, {"id": Ref("e"), "equip": Marker}])
    >>> g.col_names
    ('id', 'site', 'equip')
    >>> len(g), g[1]["id"]
    (2, Ref(id='e'))
    """

    __slots__ = ("_by_name", "_cols", "_meta", "_rows")

    _meta: FrozenDict
    _cols: tuple[Col, ...]
    _rows: tuple[FrozenDict, ...]
    _by_name: dict[str, Col]

    def __init__(
        self,
        cols: Iterable[Col | str],
        rows: Iterable[Mapping[str, Any]] = (),
        meta: Mapping[str, Any] | None = None,
    ) -> None:
        cols_t = tuple(c if isinstance(c, Col) else _plain_col(c) for c in cols)
        by_name = {c.name: c for c in cols_t}
        if len(by_name) != len(cols_t):
            raise InvalidValueError("duplicate column names")
        frozen_rows = []
        for i, row in enumerate(rows):
            fr = _frozen(row, i)
            for name in fr:
                if name not in by_name:
                    raise InvalidValueError(f"row {i} has tag {name!r} that is not a column")
            frozen_rows.append(fr)
        self._init(_frozen(meta, "grid meta"), cols_t, tuple(frozen_rows), by_name)

    def _init(
        self,
        meta: FrozenDict,
        cols: tuple[Col, ...],
        rows: tuple[FrozenDict, ...],
        by_name: dict[str, Col] | None = None,
    ) -> None:
        object.__setattr__(self, "_meta", meta)
        object.__setattr__(self, "_cols", cols)
        object.__setattr__(self, "_rows", rows)
        object.__setattr__(
            self, "_by_name", by_name if by_name is not None else {c.name: c for c in cols}
        )

    @classmethod
    def unchecked(
        cls, meta: FrozenDict, cols: tuple[Col, ...], rows: tuple[FrozenDict, ...]
    ) -> Grid:
        """A grid from parts that already keep every rule, without checking them.

        For decoders, stores and servers that build grids from data they made or
        checked themselves, where the checks of :class:`Grid` would cost more than the
        work.  The caller promises: ``meta`` and every row are :class:`FrozenDict`
        objects without nulls and with valid tag names; ``cols`` is a tuple of
        :class:`Col` with distinct names; every tag of every row names a column.
        Nothing is checked, and a broken promise gives a grid that breaks its own
        invariants: user data belongs in :class:`Grid`, :meth:`from_rows` or
        :class:`GridBuilder`.

        >>> g = Grid.unchecked(FrozenDict(), (Col("a"),), (FrozenDict(a=1),))
        >>> g.col_names, g[0]["a"]
        (('a',), 1)
        """
        grid = object.__new__(cls)
        grid._init(meta, cols, rows)
        return grid

    @classmethod
    def from_rows(
        cls, rows: Iterable[Mapping[str, Any]], meta: Mapping[str, Any] | None = None
    ) -> Grid:
        """A grid whose columns are the union of the rows' tags, in order of first use.

        >>> Grid.from_rows([{"a": 1}, {"b": 2}]).col_names
        ('a', 'b')
        """
        rows_l = list(rows)
        names: dict[str, Any] = {}
        if set(map(type, rows_l)) == {FrozenDict}:
            # Rows of one shape share one tuple of names: a column is looked for once a
            # shape, not once a row, and a row's names are checked once in its life.
            try:
                shapes = [r._keys for r in rows_l]  # type: ignore[attr-defined]
            except AttributeError:  # some row not seen before
                shapes = [_clean_shape(r, i) for i, r in enumerate(rows_l)]  # type: ignore[arg-type]
            if _NULLS in shapes:  # a FrozenDict made by hand may hold nulls: drop them
                rows_l = [_frozen(r, i) for i, r in enumerate(rows_l)]
                shapes = [_clean_shape(r, i) for i, r in enumerate(rows_l)]  # type: ignore[arg-type]
            for shape in dict.fromkeys(shapes):
                names.update(dict.fromkeys(_SHAPES[shape] if type(shape) is int else shape))
            cols = tuple(map(_plain_col, names))
            return cls.unchecked(_frozen(meta, "grid meta"), cols, tuple(rows_l))  # type: ignore[arg-type]
        for row in rows_l:
            names.update(dict.fromkeys(k for k, v in row.items() if v is not None))
        return cls(names, rows_l, meta)

    @classmethod
    def empty(cls, meta: Mapping[str, Any] | None = None) -> Grid:
        """A grid with no rows and one column named ``empty``, as Haystack writes one."""
        if not meta and cls is Grid:
            return _EMPTY_GRID  # grids never change: one will do
        return cls(["empty"], (), meta)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError("Grid is immutable")

    @property
    def meta(self) -> FrozenDict:
        """The grid meta (without ``ver``, which belongs to the wire format)."""
        return self._meta

    @property
    def cols(self) -> tuple[Col, ...]:
        """The columns, in order."""
        return self._cols

    @property
    def col_names(self) -> tuple[str, ...]:
        """The column names, in order."""
        return tuple(c.name for c in self._cols)

    @property
    def rows(self) -> tuple[FrozenDict, ...]:
        """The rows, in order."""
        return self._rows

    def col(self, name: str) -> Col:
        """The column called ``name``; ``KeyError`` if there is none."""
        return self._by_name[name]

    def has_col(self, name: str) -> bool:
        """Whether the grid has a column called ``name``."""
        return name in self._by_name

    def column(self, name: str) -> list[Any]:
        """Every row's value in column ``name`` (``None`` for empty cells).

        >>> Grid.from_rows([{"a": 1}, {"b": 2}]).column("a")
        [1, None]
        """
        if name not in self._by_name:
            raise KeyError(name)
        return [row.get(name) for row in self._rows]

    @property
    def is_error(self) -> bool:
        """Whether this is an error grid (its meta has the ``err`` marker)."""
        return "err" in self._meta

    def to_dicts(self) -> list[dict[str, Any]]:
        """The rows as new, mutable ``dict`` objects holding Haystack values."""
        return [dict(row) for row in self._rows]

    def to_python(self) -> list[dict[str, Any]]:
        """The rows as dicts of plain Python values (see :func:`to_python`).

        >>> from projecthaystack.kinds import Marker, Number
        >>> Grid.from_rows([{"site": Marker, "area": Number(10, "ft²")}]).to_python()
        [{'site': True, 'area': 10.0}]
        """
        return [{k: to_python(v) for k, v in row.items()} for row in self._rows]

    def __len__(self) -> int:
        return len(self._rows)

    def __iter__(self) -> Iterator[FrozenDict]:
        return iter(self._rows)

    @overload
    def __getitem__(self, index: int) -> FrozenDict: ...
    @overload
    def __getitem__(self, index: slice) -> tuple[FrozenDict, ...]: ...
    def __getitem__(self, index: int | slice) -> FrozenDict | tuple[FrozenDict, ...]:
        return self._rows[index]

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Grid):
            return NotImplemented
        if self._meta != other._meta or len(self._cols) != len(other._cols):
            return False
        if any(other._by_name.get(c.name) != c for c in self._cols):
            return False
        return self._rows == other._rows

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"<Grid cols={list(self.col_names)!r} rows={len(self._rows)}>"


_EMPTY_GRID: Grid = Grid(["empty"])


class GridBuilder:
    """Builds a :class:`Grid` one column or row at a time.

    >>> b = GridBuilder(meta={"dis": "Sites"})
    >>> b.add_col("id").add_col("dis", {"dis": "Name"})
    <GridBuilder cols=2 rows=0>
    >>> b.add_row({"id": Ref("s1"), "dis": "HQ"}).add_row([Ref("s2"), None])
    <GridBuilder cols=2 rows=2>
    >>> b.build()[1]
    FrozenDict({'id': Ref(id='s2')})
    """

    __slots__ = ("_cols", "_meta", "_rows")

    def __init__(self, meta: Mapping[str, Any] | None = None) -> None:
        self._meta: dict[str, Any] = dict(meta or {})
        self._cols: dict[str, Col] = {}
        self._rows: list[dict[str, Any]] = []

    def set_meta(self, name: str, value: Any) -> GridBuilder:
        """Set one tag of the grid meta."""
        self._meta[name] = value
        return self

    def add_col(self, name: str, meta: Mapping[str, Any] | None = None) -> GridBuilder:
        """Append a column; ``InvalidValueError`` if one of that name exists."""
        if name in self._cols:
            raise InvalidValueError(f"duplicate column {name!r}")
        self._cols[name] = Col(name, meta)
        return self

    def add_row(self, row: Mapping[str, Any] | Sequence[Any]) -> GridBuilder:
        """Append a row: a mapping (new tags become new columns) or one cell per column."""
        if isinstance(row, Mapping):
            for name in row:
                if name not in self._cols and row[name] is not None:
                    self.add_col(name)
            self._rows.append(dict(row))
        else:
            if len(row) != len(self._cols):
                raise InvalidValueError(f"row has {len(row)} cells for {len(self._cols)} columns")
            self._rows.append(dict(zip(self._cols, row, strict=True)))
        return self

    def build(self) -> Grid:
        """The finished grid; the builder can go on being used."""
        return Grid(self._cols.values(), self._rows, self._meta)

    def __repr__(self) -> str:
        return f"<GridBuilder cols={len(self._cols)} rows={len(self._rows)}>"
