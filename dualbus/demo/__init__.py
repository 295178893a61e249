"""``dualbus demo``: the emulator, the twins, the producers and the consumers as separate processes.

``run_demo(DemoOptions(...), console)`` starts them, runs the initial sync and a live change stream, shows
figures per area and direction, waits for the pipeline to drain, reconciles, and returns the exit code.
"""

from dualbus.demo.errors import DemoError
from dualbus.demo.run import DemoOptions, run_demo
from dualbus.demo.workload import DataSize

__all__ = ["DataSize", "DemoError", "DemoOptions", "run_demo"]
