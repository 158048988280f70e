"""``python -m gluon_bof.launch``: start an MXNet ``dist_sync`` job and watch it.

    python -m gluon_bof.launch -n WORKERS -s SERVERS [--hostfile FILE] [--ssh-port P] [--stop-timeout S] \\
        -- python train_yolo3.py --kvstore dist_sync ...

Starts the scheduler, the servers and the workers (on 127.0.0.1, or over ssh on the hosts of
``FILE``) with the ``DMLC_*`` variables, prefixes every output line with ``[role rank@host]``, and
stops the whole job, naming the process, when any of them exits non-zero or disappears; Ctrl-C stops
everything it started. The exit code is 0 only when every worker exited 0. The machinery is
:mod:`gluon_bof.engine.distributed`; ``docs/engine.md`` describes the multi-machine semantics.
"""
import sys

from gluon_bof.engine.distributed import main

if __name__ == "__main__":
    sys.exit(main())
