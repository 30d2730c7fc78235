"""`boulderseg repro --workers N | --scheduler ADDRESS`: the stages `dvc repro` would run, run on a Dask cluster,
recorded in dvc.lock by DVC's own code.

`dvcrun`: what DVC decides and records (the plan, each stage's check, the atomic dvc.lock write); `worker`: what
runs on a worker (one stage, in the worker or in a fresh process); `driver`: the loop that checks each stage once
its upstream stages are done, submits it and records it, and the client of a secure local cluster.

May import: core, warm.
"""
