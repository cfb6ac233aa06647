"""``python -m projecthaystack.server``: the ``haystack-server`` command, for when pip's
scripts directory is not on ``PATH`` (a ``--user`` install, a virtual environment not
activated)."""

if __name__ == "__main__":
    from ._cli import main

    raise SystemExit(main())
