"""Parts named like the built-ins' (``cls``, ``all``) and a head (``twin``) that two plugins offer."""
