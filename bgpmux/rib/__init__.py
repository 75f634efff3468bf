"""Paths, Adj-RIB-In with stale marking, and the decision process. Pure data and algorithms."""
