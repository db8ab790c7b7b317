"""Allow ``python -m spiketune``."""

import sys

from spiketune.cli import main

sys.exit(main())
