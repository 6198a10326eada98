"""pvflow's benchmark harness: ``python -m benchmarks`` (``make bench``).

One C softIoc, every client measured against it in its own processes, one table of ratios to
the reference client. See ``benchmarks/README.md`` for what each row means.
"""
