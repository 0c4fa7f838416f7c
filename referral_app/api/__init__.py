"""The HTTP API, mounted on the Reflex backend."""
