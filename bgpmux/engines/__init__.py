"""Engines speak BGP to the upstreams on the core's behalf: exabgp (default), gobgp, native."""
