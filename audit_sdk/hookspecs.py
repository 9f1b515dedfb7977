"""Every hook that audit-sdk calls, in one place.

A plugin is a module (or object) with functions marked ``@hookimpl`` whose names match the
hooks below. pluggy validates each implementation against these specs when the plugin is
registered: a misspelled hook name or an unknown argument is an error, not silence.

Each registration hook receives a ``register`` callback. Call it once per class you provide::

    from audit_sdk import hookimpl

    @hookimpl
    def audit_sdk_register_detectors(register):
        register(MyDetector)

The host checks the class's ``name``, rejects a name that another plugin already registered
(naming both providers), and records which distribution provided it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

import pluggy

if TYPE_CHECKING:
    from audit_sdk.interfaces import (
        DatasetLoader,
        Detector,
        GeneratorAdapter,
        Mitigator,
        Reporter,
        UserFeature,
    )
    from audit_sdk.plugin_commands import PluginCommand

__all__ = ["PROJECT_NAME", "hookimpl", "hookspec"]

PROJECT_NAME = "audit_sdk"

hookspec = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)


class RegisterAdapter(Protocol):
    def __call__(self, adapter_class: type[GeneratorAdapter], /) -> None: ...


class RegisterDetector(Protocol):
    def __call__(self, detector_class: type[Detector], /) -> None: ...


class RegisterMitigator(Protocol):
    def __call__(self, mitigator_class: type[Mitigator], /) -> None: ...


class RegisterReporter(Protocol):
    def __call__(self, reporter_class: type[Reporter], /) -> None: ...


class RegisterDatasetLoader(Protocol):
    def __call__(self, loader_class: type[DatasetLoader], /) -> None: ...


class RegisterCommand(Protocol):
    def __call__(self, command_class: type[PluginCommand], /) -> None: ...


class RegisterFeature(Protocol):
    def __call__(self, feature_class: type[UserFeature], /) -> None: ...


@hookspec
def audit_sdk_register_adapters(register: RegisterAdapter) -> None:
    """Register generator adapters: the wrappers around the system under audit.

    Fires once, when plugins are first loaded (``audit_sdk.load_plugins``).

    :param register: call ``register(AdapterClass)`` for each subclass of
        :class:`audit_sdk.interfaces.GeneratorAdapter` this plugin provides. The class's
        ``name`` is what an audit config's ``subject.adapter`` refers to.
    :returns: nothing; the return value is ignored.

    Since 0.1.
    """


@hookspec
def audit_sdk_register_detectors(register: RegisterDetector) -> None:
    """Register bias detectors.

    Fires once, when plugins are first loaded.

    :param register: call ``register(DetectorClass)`` for each subclass of
        :class:`audit_sdk.interfaces.Detector`. The class's ``name`` is what an audit config's
        ``detectors[].name`` refers to.
    :returns: nothing.

    Since 0.1.
    """


@hookspec
def audit_sdk_register_mitigators(register: RegisterMitigator) -> None:
    """Register mitigators: methods that change the subject to reduce a measured bias.

    Fires once, when plugins are first loaded.

    :param register: call ``register(MitigatorClass)`` for each subclass of
        :class:`audit_sdk.interfaces.Mitigator`. Config: ``mitigators[].name``.
    :returns: nothing.

    Since 0.1.
    """


@hookspec
def audit_sdk_register_reporters(register: RegisterReporter) -> None:
    """Register report renderers (JSON, HTML, JUnit, Markdown, or your own format).

    Fires once, when plugins are first loaded.

    :param register: call ``register(ReporterClass)`` for each subclass of
        :class:`audit_sdk.interfaces.Reporter`. Config: ``outputs.formats``.
    :returns: nothing.

    Since 0.1.
    """


@hookspec
def audit_sdk_register_dataset_loaders(register: RegisterDatasetLoader) -> None:
    """Register dataset loaders that turn files or generators into a :class:`Dataset`.

    Fires once, when plugins are first loaded.

    :param register: call ``register(LoaderClass)`` for each subclass of
        :class:`audit_sdk.interfaces.DatasetLoader`. Config: ``dataset.loader``.
    :returns: nothing.

    Since 0.1.
    """


@hookspec
def audit_sdk_register_features(register: RegisterFeature) -> None:
    """Register shared user features (e.g. a generalist-specialist score) that groups,
    detectors and mitigators read by name from ``context.features.get(name)``.

    Fires once, when plugins are first loaded.

    :param register: call ``register(FeatureClass)`` for each subclass of
        :class:`audit_sdk.interfaces.UserFeature`. Its ``name`` is the feature's name; every
        registered feature is available to every audit and computed only when read.
    :returns: nothing.

    Since 0.2.
    """


@hookspec
def audit_sdk_register_commands(register: RegisterCommand) -> None:
    """Register subcommands of the ``audit-sdk`` command line (``audit-sdk train-tinyrec`` is
    one, from the tinyrec plugin).

    Fires once, when plugins are first loaded; the CLI loads plugins for this only when a
    command name is not a built-in one, or to list every command in ``--help``.

    :param register: call ``register(CommandClass)`` for each subclass of
        :class:`audit_sdk.plugin_commands.PluginCommand`. Its ``name`` is the command
        (``audit-sdk <name>``); a built-in command of the same name hides it.
    :returns: nothing.

    Since 0.2.
    """
