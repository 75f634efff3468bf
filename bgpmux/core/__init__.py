"""The single owner of routing state.

``routing.Core`` is sans-IO: typed events (``events``) and the time in, changes out through the
engine port (``port``) and the clients' links; ``runner.CoreRunner`` is its asyncio glue.
"""

from .routing import Core

__all__ = ["Core"]
