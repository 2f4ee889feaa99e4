"""The mirror: the daemon as a cross-posting bot.

Every `mirror.every` the daemon backs up the source account into the archive (the backup's own
code, incremental, same cursor), then looks at each source thread there (`decide`): a thread
whose newest post is `settle` old goes to the daemon's publisher, the very path `post` and the
schedules use, for the target platforms only. What the archive cannot hold lives in `state`.
"""
