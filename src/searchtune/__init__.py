"""searchtune: custom search relevance, end to end.

The package is laid out in the order of the flow: ``data`` -> ``train`` -> ``registry`` -> ``serve`` ->
``search`` -> ``eval``; ``cli`` wires every stage into the one ``searchtune`` command.
"""

import os

# OpenMP threads that have no work sleep instead of spinning. torch's OpenMP (libgomp) reads this once, when it is
# loaded, so it is set here, before anything imports torch. On a machine busier than its cores (measured here: 2
# cores, load 14), spinning threads steal the time slices the working thread needs and a 2-thread training step
# took 20-45 s; passive waiting brought the same step to 3-4 s (docs/training.md). Set it to ACTIVE to override.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

__version__ = "0.1.0"
