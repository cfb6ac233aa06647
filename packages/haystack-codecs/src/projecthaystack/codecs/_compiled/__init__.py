"""The codecs' hot modules compiled with mypyc, built from copies of the pure-Python ones.

Empty in a clone until ``python3 tools/dev.py compile`` (or a wheel build with a C compiler)
puts the extension modules here; ``projecthaystack.codecs._impl`` decides whether they run.
"""
