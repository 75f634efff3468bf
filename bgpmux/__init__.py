"""bgpmux: the per-node BGP multiplexer."""

__version__ = "0.1.0"
