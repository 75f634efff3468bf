"""Paths, Adj-RIB-In with stale marking, the decision process and the Loc-RIB. Pure data and
algorithms."""
