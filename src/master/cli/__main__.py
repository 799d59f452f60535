"""`python -m master.cli`: the same as the `schedctl` console script."""

from . import main

raise SystemExit(main())
