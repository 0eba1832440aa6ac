import zoo_broken_missing_dependency  # noqa: F401  (not installed: the import fails)
