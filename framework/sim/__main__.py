"""`python -m framework.sim ...`: the same commands as `hil sim ...`."""

from framework.sim.cli import app

app(prog_name="python -m framework.sim")
