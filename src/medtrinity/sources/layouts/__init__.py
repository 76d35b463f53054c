"""Dataset layouts: one module per layout, registered by name; the module name is the layout name with "-" as "_"."""
