"""The ``searchtune`` command: one typer app per stage, composed in :mod:`searchtune.cli.main`."""
