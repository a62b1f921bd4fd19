"""`python -m app ...`: the host command line (see app/cli)."""
from .cli import main

raise SystemExit(main())
