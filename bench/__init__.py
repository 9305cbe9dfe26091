"""Benchmarks of the gateway against the fake upstream: ``python -m bench.run`` (``make bench``).

Modules: ``procs`` starts and measures processes (fake upstreams, the gateway, LiteLLM),
``wrk`` drives HTTP load with wrk, ``streams`` holds thousands of open streams (its own
process), ``report`` turns repeated runs into the tables of bench/RESULTS.md.
"""
