"""`python -m framework.sim ...`: the same commands as `hil sim ...`."""

import typer.core

from framework.sim.cli import app

typer.core.HAS_RICH = False  # plain click help without "\[default: ...]" (framework/cli.py)
app(prog_name="python -m framework.sim")
