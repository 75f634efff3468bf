"""A set-up that starts as a context manager and is torn down even when starting fails."""

from __future__ import annotations

import abc
from typing import Self


class Lifecycle(abc.ABC):
    """``with X() as x:`` runs ``_start``; ``close`` runs on leaving, and at once if ``_start``
    raised (including KeyboardInterrupt), so nothing it began is left behind."""

    def __enter__(self) -> Self:
        try:
            self._start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @abc.abstractmethod
    def _start(self) -> None:
        """Build and start everything; may be left half done (``close`` copes)."""

    @abc.abstractmethod
    def close(self) -> None:
        """Stop and remove whatever was started; safe to call more than once."""
