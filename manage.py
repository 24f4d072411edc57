#!/usr/bin/env python
import os
import sys


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "whyops_local.settings")
    from django.core.management import execute_from_command_line

    from whyops_local import datadir

    datadir.prepare(datadir.path())

    if sys.argv[1:2] == ["runserver"]:
        # daphne owns the runserver command (it must, to serve ASGI), so the
        # "just works" start-up (migrate, say where data lives) hooks in here.
        from whyops_local.startup import prepare_for_runserver

        prepare_for_runserver(sys.argv[2:])
    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
