"""The Haystack Auth protocol (HELLO, SCRAM-SHA-256, BEARER) written sans-I/O, and mTLS helpers.

This package is a skeleton: only its version is defined so far.
"""

from .__about__ import __version__ as __version__

__all__: list[str] = []
