"""The CLI modules sit on top: nothing but the CLI itself imports ``dualbus.commands``.

What a command and another part (the demo, the console) both need lives in a module of that part or of
``dualbus.ops``, so that the demo does not pull typer's option declarations and a command's exit codes in.
"""

from __future__ import annotations

from tests.unit.sources import SHIPPED, imported_modules, python_files, reaches

CLI = ("dualbus/cli.py", "dualbus/commands/")


def imports_commands(source: str) -> bool:
    """Whether ``source`` imports a ``dualbus.commands`` module by an import statement."""
    return any(reaches(module, "dualbus.commands") for module in imported_modules(source))


def test_only_the_cli_imports_the_commands() -> None:
    """No module outside dualbus/cli.py and dualbus/commands/ imports a command module."""
    offenders = [
        relative
        for relative, path in python_files((*SHIPPED, "bench"))
        if not relative.startswith(CLI) and imports_commands(path.read_text(encoding="utf-8"))
    ]
    assert offenders == []


def test_an_import_of_a_command_is_caught() -> None:
    """Both import forms of a command module are seen; a module merely named alike is not."""
    assert imports_commands("from dualbus.commands.reconcile import print_report\n")
    assert imports_commands("import dualbus.commands.common\n")
    assert not imports_commands("from dualbus.commandsets import x\n")
