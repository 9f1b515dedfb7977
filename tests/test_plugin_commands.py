"""Plugins contribute CLI commands through audit_sdk_register_commands."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

import pytest
import typer
from typer.testing import CliRunner

from audit_sdk import hookimpl
from audit_sdk.cli import app
from audit_sdk.errors import ConfigError
from audit_sdk.plugin_commands import PluginCommand, PluginCommandWarning
from audit_sdk.plugin_host import get_plugin_host

runner = CliRunner()


class _Hello(PluginCommand):
    name = "hello-test"
    description = "Greet someone (a test command)."

    @staticmethod
    def run(who: Annotated[str, typer.Option(help="Whom to greet.")] = "world") -> None:
        """Say hello."""
        if who == "nobody":
            raise ConfigError("--who nobody: name someone.")
        print(f"hello {who}")


class _Shadow(PluginCommand):
    name = "gate"
    description = "Tries to replace a built-in command."

    @staticmethod
    def run() -> None:
        print("shadow")


class _Plugin:
    @hookimpl
    def audit_sdk_register_commands(self, register: object) -> None:
        register(_Hello)  # type: ignore[operator]
        register(_Shadow)  # type: ignore[operator]


@pytest.fixture
def hello_plugin() -> Iterator[None]:
    host = get_plugin_host()
    host.register_plugin(_Plugin(), name="hello-test-plugin")
    try:
        yield
    finally:
        host.unregister_plugin("hello-test-plugin")


def test_a_plugin_command_runs_and_its_errors_are_one_message(hello_plugin: None) -> None:
    host = get_plugin_host()
    assert host.get("command", "hello-test").cls is _Hello
    done = runner.invoke(app, ["hello-test", "--who", "you"])
    assert done.exit_code == 0, done.output
    assert "hello you" in done.output
    failed = runner.invoke(app, ["hello-test", "--who", "nobody"])
    assert failed.exit_code == 2
    assert "name someone" in failed.output and "Traceback" not in failed.output


def test_a_plugin_cannot_replace_a_built_in_command(hello_plugin: None) -> None:
    with pytest.warns(PluginCommandWarning, match="'gate'.*hidden by the built-in"):
        listing = runner.invoke(app, ["--help"], env={"COLUMNS": "200"})
    assert listing.exit_code == 0
    assert "hello-test" in listing.output and "Greet someone" in listing.output
    builtin = runner.invoke(app, ["gate", "--help"])
    assert "shadow" not in builtin.output and builtin.exit_code == 0


def test_built_in_plugins_provide_the_model_commands() -> None:
    host = get_plugin_host()
    assert host.get("command", "train-tinyrec").plugin == "tinyrec"
    assert host.get("command", "export-onnx").plugin == "onnx"
    result = runner.invoke(app, ["train-tinyrec", "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0 and "--time-budget" in result.output


def test_inline_plugins_can_add_commands() -> None:
    from audit_sdk import testing

    host = testing.make_host()
    with testing.inline_plugin(host, _Hello):
        assert host.registry.has("command", _Hello.name)
    assert not host.registry.has("command", _Hello.name)
