"""Sources: one small adapter per dataset layout, named recipes, and the imaging readers."""
