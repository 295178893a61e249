"""What producers and consumers both speak: envelope, topology, maps, settings, errors, telemetry."""
