"""One module per CLI command; `crossposter.cli` only parses options and calls `run(...)`.

Each `run` returns the process exit code. Modules are imported only when their
command runs, so `preview` never pays for the platform SDKs or the scheduler.
"""
