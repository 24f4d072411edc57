#!/usr/bin/env python
import sys

from whyops_local.cli import manage

if __name__ == "__main__":
    manage(sys.argv)
