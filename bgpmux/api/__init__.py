"""The local API: gRPC service ``bgpmux.v1.Mux`` (proto/bgpmux/v1/*.proto, stubs in
``bgpmux.v1``) on the unix socket of ``api.listen``, and on ``api.listen_tcp`` when set.

``server`` serves it, ``client`` calls it (the CLI), ``convert`` turns bgpmux's data into its
messages and its messages into the CLI's JSON, ``events`` fans the event stream out, ``unix``
keeps the socket safe.
"""

from .events import ReloadOutcome
from .server import ApiServer
from .unix import ApiPathError

__all__ = ["ApiPathError", "ApiServer", "ReloadOutcome"]
