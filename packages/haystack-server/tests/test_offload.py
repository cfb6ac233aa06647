"""Big bodies are decoded, and big responses encoded, off the event loop: other clients
keep being answered meanwhile.

The big decode or encode is held until enough small calls have been answered: off the
event loop that happens at once; on it, nothing is answered while it waits, so the test
fails however fast or slow the machine is.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator

import httpx
import pytest

from projecthaystack.codecs import Codec, zinc
from projecthaystack.kinds import Grid, Number
from projecthaystack.server import Op, OpContext, ServerConfig, ServerLimits

from .conftest import Live

MAX_BODY = 4 * 1024 * 1024
ENOUGH = 25  # small calls answered meanwhile: far more than a blocked loop lets through
HOLD = 30.0  # seconds the big work waits for them at most (only reached when they never come)


def _max_size_zinc() -> bytes:
    """A Zinc grid of exactly MAX_BODY bytes: many small rows, slow to read."""
    head = b'ver:"3.0"\nid,v,s\n'
    row = b'@p%07d,%d.5,"abc"\n'
    rows = []
    size = len(head)
    i = 0
    while size + len(row % (i, i)) <= MAX_BODY - 64:
        line = row % (i, i)
        rows.append(line)
        size += len(line)
        i += 1
    body = head + b"".join(rows)
    pad = MAX_BODY - len(body) - len(b'@pad,0,""\n')
    return body + b'@pad,0,"' + b"x" * pad + b'"\n'


Big = Callable[[threading.Event, threading.Event], None]


def _count_abouts_while(url: str, token: str, big: Big, enough: threading.Event) -> int:
    """How many ``about`` calls complete after ``big`` sets its first event (its request
    is sent) and before it sets its second (the answer's head arrived); ``enough`` is set
    once :data:`ENOUGH` have."""
    sent = threading.Event()
    done = threading.Event()
    errors: list[BaseException] = []

    def run_big() -> None:
        try:
            big(sent, done)
        except BaseException as exc:  # reported by the test below
            errors.append(exc)
        finally:
            sent.set()
            done.set()

    worker = threading.Thread(target=run_big)
    worker.start()
    completed = 0
    headers = {"Authorization": f"BEARER authToken={token}"}
    with httpx.Client(base_url=url + "/", headers=headers, timeout=60) as http:
        assert sent.wait(60)
        while not done.is_set():
            resp = http.get("about")
            assert resp.status_code == 200
            if not done.is_set():
                completed += 1
                if completed >= ENOUGH:
                    enough.set()
    worker.join(60)
    assert not errors, errors
    return completed


def test_a_small_request_completes_while_a_maximum_size_body_is_decoded(
    make_live: Callable[..., Live], monkeypatch: pytest.MonkeyPatch
) -> None:
    enough = threading.Event()
    decode = Codec.decode

    def held_decode(self: Codec, data: bytes | str, **kw: object) -> object:
        if len(data) == MAX_BODY:
            enough.wait(HOLD)
        return decode(self, data, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(Codec, "decode", held_decode)
    live = make_live(ServerConfig(limits=ServerLimits(max_body=MAX_BODY)))
    body = _max_size_zinc()
    assert len(body) == MAX_BODY
    token = live.token("viewer")

    def big(sent: threading.Event, answered: threading.Event) -> None:
        def chunks() -> Iterator[bytes]:
            for start in range(0, len(body), 1 << 20):
                yield body[start : start + (1 << 20)]
            sent.set()  # the whole body is on its way: the server reads, then decodes

        headers = {"Authorization": f"BEARER authToken={token}", "Content-Type": "text/zinc"}
        with httpx.Client(timeout=120) as http:
            resp = http.post(f"{live.url}/read", content=chunks(), headers=headers)
        answered.set()
        # Decoded in full, then refused by the op: more rows than a read takes.
        assert resp.status_code == 200
        assert zinc.decode_grid(resp.content).is_error

    assert _count_abouts_while(live.url, token, big, enough) >= ENOUGH


def test_a_small_request_completes_while_a_big_response_is_encoded(
    make_live: Callable[..., Live], monkeypatch: pytest.MonkeyPatch
) -> None:
    enough = threading.Event()
    encode = Codec.encode

    def held_encode(self: Codec, grid: Grid) -> bytes:
        if grid is big_grid:
            enough.wait(HOLD)
        return encode(self, grid)

    monkeypatch.setattr(Codec, "encode", held_encode)
    rows = [{"n": Number(i), "a": Number(i + 0.5), "b": f"row {i}"} for i in range(150_000)]
    big_grid = Grid.from_rows(rows)

    async def big_op(ctx: OpContext, req: Grid) -> Grid:
        return big_grid  # built already: the time goes into encoding it

    live = make_live(ops=[Op("big", big_op, no_side_effects=True)])
    token = live.token("viewer")

    def big(sent: threading.Event, answered: threading.Event) -> None:
        headers = {"Authorization": f"BEARER authToken={token}", "Accept": "text/zinc"}
        with httpx.Client(timeout=120) as http:
            sent.set()  # the op itself is instant: nearly all the time goes to the encode
            with http.stream("GET", f"{live.url}/big", headers=headers) as resp:
                answered.set()  # the head comes once the body is encoded
                assert resp.status_code == 200
                assert sum(len(c) for c in resp.iter_bytes()) > 1_000_000

    assert _count_abouts_while(live.url, token, big, enough) >= ENOUGH


@pytest.mark.parametrize("threads", [0, -1])
def test_offload_threads_must_be_positive(threads: int) -> None:
    with pytest.raises(ValueError, match="offload_threads"):
        ServerConfig(offload_threads=threads)
