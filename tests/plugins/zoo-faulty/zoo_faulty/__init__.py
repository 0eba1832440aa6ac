"""Plugins whose code is wrong in the ways real plugin code is; zoo must report each on one line."""
