"""The daemon (`crossposter daemon`), one job per module.

* `watch` — which archives changed (stat polling) and each thread as the daemon sees it;
* `policy` — pure decisions: what is due, missed, resumed, retried, which thread a queue slot takes;
* `state` — `daemon-state.json` (outcomes the archive cannot hold) and the heartbeat file;
* `jobs` — the APScheduler bookkeeping (date jobs per thread, cron jobs per queue slot);
* `worker` — the one thread that publishes, one thread at a time;
* `attempt` — one publication and the outcome it leaves in the state file;
* `child` — the publisher child process (the SDKs' memory lives and dies there);
* `engine` — `Engine`, which puts them together; the command is `crossposter.commands.daemon`.

Nothing is imported here, so `status` and `check` can read the state file without the engine.
"""
