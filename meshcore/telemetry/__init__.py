"""What Mesh tells operators: Prometheus metrics and OpenTelemetry traces."""
