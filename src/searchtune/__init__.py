"""searchtune: custom search relevance, end to end.

The package is laid out in the order of the flow: ``data`` -> ``train`` -> ``registry`` -> ``serve`` ->
``search`` -> ``eval``; ``cli`` wires every stage into the one ``searchtune`` command.
"""

__version__ = "0.1.0"
