"""zoo's built-in plugins. Each registers through the ``zoo`` entry-point group like any other."""
