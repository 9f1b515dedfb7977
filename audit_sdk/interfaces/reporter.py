"""The reporter interface: render a :class:`Report` to one file."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, ClassVar

if TYPE_CHECKING:
    from audit_sdk.report_model import Report

__all__ = ["Reporter"]


class Reporter(ABC):
    """``name`` is what ``outputs.formats`` lists; ``filename`` is the file written."""

    name: ClassVar[str]
    filename: ClassVar[str]
    description: ClassVar[str] = ""

    @abstractmethod
    def render(self, report: Report) -> str:
        """Return the whole file's text. The runner writes it atomically."""
