"""The provider simulator: one module per provider it plays, the shared state and faults,
the inspection endpoints, and the server that mounts them (see `server`)."""
