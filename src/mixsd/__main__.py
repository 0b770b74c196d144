"""``python -m mixsd`` (and ``accelerate launch -m mixsd``) runs the CLI."""

import sys

from mixsd.cli import main

sys.exit(main())
