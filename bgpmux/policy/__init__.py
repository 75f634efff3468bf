"""Import and export policy: prefix rules, attribute transforms and per-peer channels; no I/O."""
