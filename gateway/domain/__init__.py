"""Domain facts shared by intake, mappings and simulators (DESIGN.md §4)."""
