"""``python -m botwire_server`` is the ``botwire-server`` command."""

from .cli import main

raise SystemExit(main())
