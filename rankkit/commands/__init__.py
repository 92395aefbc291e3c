"""One module per command group; each exposes ``register(app)``. Shared option types live in :mod:`.options`."""
