"""Entry points of ``python -m dualbus.producers`` and the ``dualbus`` CLI: settings, logging, telemetry."""

from __future__ import annotations

from collections.abc import Sequence

from dualbus.producers.runner import run_producer
from dualbus.producers.settings import load_producer_settings
from dualbus.shared import loops
from dualbus.shared.envelope import Origin
from dualbus.shared.logs import register_secret, setup_logging
from dualbus.shared.settings import Settings, load_settings
from dualbus.shared.telemetry import setup_telemetry

__all__ = ["configured", "produce"]


def configured(service: str) -> Settings:
    """Load settings, register their secrets for redaction, and set up logging and telemetry."""
    settings = load_settings()
    for secret in settings.secrets():
        register_secret(secret)
    setup_logging(settings.log_level, json=settings.log_format == "json")
    setup_telemetry(service)
    return settings


def produce(origin: Origin, *, areas: Sequence[str] | None = None) -> None:
    """Run the producer of ``origin`` until SIGTERM or SIGINT."""
    settings = configured(f"dualbus-producer-{origin.value}")
    options = load_producer_settings()
    register_secret(options.fo_webhook_key)
    loops.run(run_producer(origin, settings, options, areas=areas))
