"""Subcommands of ``audit-sdk`` that plugins contribute.

A plugin implements ``audit_sdk_register_commands`` and registers a :class:`PluginCommand`
subclass; the registry checks its name and rejects a duplicate like any other component::

    class Hello(PluginCommand):
        name = "hello"
        description = "Say hello."

        @staticmethod
        def run(who: Annotated[str, typer.Option(help="Whom to greet.")] = "world") -> None:
            print(f"hello {who}")

The CLI's command group (:class:`PluginCommandGroup`) looks a name up among the built-in
commands first and asks the plugins only when none matches, so ``audit-sdk run`` or
``audit-sdk gate`` never load plugins for their own sake; ``audit-sdk --help`` lists both.
A plugin command cannot replace a built-in one: the built-in wins and ``--help`` warns.
"""

from __future__ import annotations

import warnings
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar

import typer
from typer.core import TyperGroup

if TYPE_CHECKING:  # typer ships its own copy of click
    from typer._click import Command, Context

__all__ = ["PluginCommand", "PluginCommandGroup", "PluginCommandWarning"]


class PluginCommandWarning(UserWarning):
    """A plugin's command is hidden by a built-in command of the same name."""


class PluginCommand(ABC):
    """An ``audit-sdk <name>`` subcommand a plugin provides.

    ``name`` is the command (lowercase letters, digits, ``_ . -``); ``description`` is the
    one-line help. :meth:`run` is a static method whose parameters typer turns into
    arguments and options (``Annotated[..., typer.Option(...)]``); its docstring is the long
    help. An :class:`audit_sdk.errors.AuditSDKError` it raises prints as one message with the
    error's exit code, like the built-in commands' errors.
    """

    name: ClassVar[str]
    description: ClassVar[str] = ""

    @staticmethod
    @abstractmethod
    def run(*args: Any, **kwargs: Any) -> None:
        """Carry out the command."""


def _plugin_commands() -> dict[str, type[PluginCommand]]:
    from audit_sdk.plugin_host import get_plugin_host

    registry = get_plugin_host().registry
    return {name: registry.get("command", name).cls for name in registry.names("command")}


def click_command(
    command: type[PluginCommand], *, wrap: Callable[[Callable[..., Any]], Callable[..., Any]]
) -> Command:
    """The click command typer builds from ``command.run``, its callback passed through
    ``wrap`` (the CLI's error handling)."""
    single = typer.Typer(add_completion=False)
    single.command(name=command.name, help=command.run.__doc__ or command.description)(
        wrap(command.run)
    )
    built = typer.main.get_command(single)
    built.name = command.name
    if command.description:
        built.short_help = command.description
    return built


class PluginCommandGroup(TyperGroup):
    """The root command group: built-in commands, then the commands plugins register."""

    def wrap(self, callback: Callable[..., Any]) -> Callable[..., Any]:
        """Wrap a plugin command's callback (the CLI turns errors into messages here)."""
        return callback

    def list_commands(self, ctx: Context) -> list[str]:
        builtin = super().list_commands(ctx)
        plugin = _plugin_commands()
        for name in sorted(set(plugin) & set(builtin)):
            warnings.warn(
                PluginCommandWarning(
                    f"the command {name!r} of a plugin ({plugin[name].__module__}) is hidden by "
                    f"the built-in command of the same name; rename the plugin's command."
                ),
                stacklevel=2,
            )
        return [*builtin, *sorted(set(plugin) - set(builtin))]

    def get_command(self, ctx: Context, cmd_name: str) -> Command | None:
        command = super().get_command(ctx, cmd_name)
        if command is not None:
            return command
        plugin = _plugin_commands().get(cmd_name)
        return click_command(plugin, wrap=self.wrap) if plugin is not None else None
