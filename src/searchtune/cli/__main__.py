"""``python -m searchtune.cli``: the same command as the ``searchtune`` script (tests run it as a subprocess)."""

from searchtune.cli.main import app

app(prog_name="searchtune")
