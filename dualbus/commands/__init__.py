"""The CLI's command groups; each module has ``register(app)`` and is listed in ``dualbus.cli``."""
