"""The `mesh` command: serve, worker, db upgrade, submit."""
