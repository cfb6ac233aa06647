"""``python -m tools.scaleout`` (from the repository's root): the scale-out rig."""

import sys

from .rig import main

sys.exit(main())
