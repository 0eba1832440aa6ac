"""The registry floor: naming parts (the spec grammar), the catalogue (registry.toml), the plugin host, the
registry that resolves names to parts, and the checks on what plugin code returns. Imports only the contract."""
