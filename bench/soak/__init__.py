"""``make soak``: bgpmux under an hour of churn, split across the engines, with its resident
memory and open descriptors sampled every 10 s and their growth judged (issue 7).

Modules: ``rack.py`` (namespaces and daemon configs), ``churn.py`` (the LB churner and the
flapping client), ``procs.py`` (/proc sampling), ``fit.py`` (slopes and verdicts), ``run.py``
(one engine's phase and the end checks), ``report.py`` (JSON and Markdown), ``cli.py``.
"""
