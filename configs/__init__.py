"""Settings, parameters and static configuration (paths, URIs, tunables)."""
