"""The main job: compose every stage into one unattended run that ends with a report (``searchtune quickstart``)."""
