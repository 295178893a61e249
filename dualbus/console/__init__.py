"""``dualbus console``: an operator's web console beside the pipeline."""

from dualbus.console.server import build_app, serve

__all__ = ["build_app", "serve"]
