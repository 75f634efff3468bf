"""The benchmark: bgpmux (engines native and exabgp) against BIRD and GoBGP doing the same job.

`python -m bench` (or `make bench`) builds, for every mux and every run, three network namespaces
(a BIRD injector in the Calico role, the mux node, a BIRD ToR), measures propagation times, the
added latency of one route from packet timestamps, and the mux's peak RSS, and writes
`bench/results/latest.md` and `bench/results/latest.json`. See `python -m bench --help`.
"""
