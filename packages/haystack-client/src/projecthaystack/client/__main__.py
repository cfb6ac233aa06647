"""``python -m projecthaystack.client``: the ``haystack`` command, for when pip's scripts
directory is not on ``PATH`` (a ``--user`` install, a virtual environment not
activated)."""

if __name__ == "__main__":
    from ._cli import main

    raise SystemExit(main())
