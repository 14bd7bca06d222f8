"""The application: use cases over the ports, one module per area."""
