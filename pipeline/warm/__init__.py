"""The warm process: per-video stages run in one long-lived process, so imports and model builds are paid once.

`client` hands a `python -m stages.NAME` command over a Unix socket; `server` takes such jobs one at a time;
`runner` runs one stage module in the current process as its own process would (the server and the cluster's
workers use it). The client imports only `runner`'s key; it never imports the server.

May import: core.
"""
