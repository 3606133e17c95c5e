"""``python -m botwire_mcp`` is the ``botwire-mcp`` command."""

import sys

from .cli import main

sys.exit(main())
