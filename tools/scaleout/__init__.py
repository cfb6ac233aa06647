"""The scale-out rig: several haystack-server instances behind HAProxy on one shared
store, under load and faults (see ``rig.py``; ``plot.py`` draws its figure)."""
