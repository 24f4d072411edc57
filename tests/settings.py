"""Test settings: the app's own, with data in a throwaway directory instead of the user's."""

import os
import tempfile

os.environ["WHYOPS_DATA_DIR"] = tempfile.mkdtemp(prefix="whyops-test-")

from whyops_local.settings import *  # noqa: E402,F403

WHYOPS_DEDICATED_WRITER = False
