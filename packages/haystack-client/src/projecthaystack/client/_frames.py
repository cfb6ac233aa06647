"""Grids as pandas or polars DataFrames (the ``[pandas]`` and ``[polars]`` extras)."""

from __future__ import annotations

from typing import Any

from projecthaystack.kinds import Grid, Ref, to_python

__all__ = ["his_frame", "to_pandas", "to_polars"]


def _need(module: str, extra: str) -> Any:
    try:
        return __import__(module)
    except ImportError as exc:
        raise ImportError(
            f"{module} is not installed: it comes with the [{extra}] extra of "
            f"haystack-client (or: python -m pip install {module})"
        ) from exc


def _columns(grid: Grid) -> dict[str, list[Any]]:
    return {name: [to_python(v) for v in grid.column(name)] for name in grid.col_names}


def to_pandas(grid: Grid) -> Any:
    """A pandas DataFrame of plain Python values (Numbers as floats, Refs as ids, markers
    as True), one column per grid column.

    >>> from projecthaystack.kinds import Grid, Marker, Number
    >>> to_pandas(Grid.from_rows([{"site": Marker, "area": Number(10, "ft²")}]))  # doctest: +SKIP
    """
    pd = _need("pandas", "pandas")
    return pd.DataFrame(_columns(grid), columns=list(grid.col_names))


def to_polars(grid: Grid) -> Any:
    """A polars DataFrame of plain Python values, one column per grid column."""
    pl = _need("polars", "polars")
    return pl.DataFrame(_columns(grid), strict=False)


def _value_names(grid: Grid) -> dict[str, str]:
    """Value column → the name it gets in a wide frame: the point's id (or dis)."""
    names: dict[str, str] = {}
    for col in grid.cols:
        if col.name == "ts":
            continue
        ref = col.meta.get("id")
        if isinstance(ref, Ref):
            names[col.name] = ref.dis or ref.id
        elif col.name == "val" and isinstance(grid.meta.get("id"), Ref):
            meta_ref = grid.meta["id"]
            names[col.name] = meta_ref.dis or meta_ref.id
        else:
            names[col.name] = col.name
    return names


def his_frame(grid: Grid, *, library: str = "pandas") -> Any:
    """A hisRead result (one point or the batch form) as a wide frame: a ``ts`` index
    and one float column per point, named by the point's display name or id.

    With ``library="polars"`` the frame has a ``ts`` column instead of an index.
    """
    if not grid.has_col("ts"):
        raise ValueError("not a hisRead result: it has no 'ts' column")
    names = _value_names(grid)
    data: dict[str, list[Any]] = {"ts": list(grid.column("ts"))}
    for col, name in names.items():
        data[name] = [to_python(v) for v in grid.column(col)]
    if library == "polars":
        pl = _need("polars", "polars")
        return pl.DataFrame(data, strict=False)
    if library != "pandas":
        raise ValueError(f"library must be 'pandas' or 'polars', not {library!r}")
    pd = _need("pandas", "pandas")
    frame = pd.DataFrame(data)
    return frame.set_index("ts")
