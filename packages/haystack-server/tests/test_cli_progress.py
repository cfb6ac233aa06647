"""``haystack-server serve --load`` shows its progress with big files on a terminal, and
nothing when its output is piped."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from projecthaystack.codecs import zinc
from projecthaystack.kinds import Grid, Marker, Ref
from projecthaystack.server import _cli


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize("terminal", [True, False])
def test_load_progress(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, terminal: bool) -> None:
    path = tmp_path / "big.zinc"
    rows = [{"id": Ref(f"p{i}"), "dis": f"Point {i}", "point": Marker} for i in range(1000)]
    path.write_text(zinc.encode_grid(Grid.from_rows(rows)))
    stream = Tty() if terminal else io.StringIO()
    monkeypatch.setattr("sys.stderr", stream)
    records = _cli._load_files([str(path)], progress=True)
    assert len(records) == 1000
    shown = stream.getvalue()
    if terminal:
        assert "reading and decoding" in shown
        assert "1,000 entities" in shown
        assert shown.endswith("\n")
    else:
        assert shown == ""
