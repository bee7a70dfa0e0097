"""Visualisation jobs: one per content id, shared by every viewer of it.

``core`` is what every job manager shares (the job, its viewers' mailboxes, the job table with
its admission limits, the ``Jobs`` interface the routes and the atlas use); ``scheduling`` decides
which waiting job runs next; ``in_process`` runs jobs on this server's threads. The manager of
``--workers external`` (jobs run by ``stlens worker`` processes) is ``stlens.queue.manager``.
"""
