"""Where whyops-local keeps its data, and preparing it: free of Django, so that the start-up can make
the folder and the secret key before the settings read them (settings themselves write nothing)."""

import os
import secrets
from pathlib import Path

import platformdirs

SECRET_KEY_FILE = "secret_key"


def path() -> Path:
    """``WHYOPS_DATA_DIR``, else the per-user data directory."""
    return Path(os.environ.get("WHYOPS_DATA_DIR") or platformdirs.user_data_dir("whyops-local", appauthor=False))


def prepare(data_dir: Path) -> None:
    """Make the data folder and its secret key, once; private to the user, like everything the process makes
    from now on (the database and its -wal and -shm files, which SQLite creates lazily, exports)."""
    os.umask(0o077)
    data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    for made_earlier in data_dir.iterdir():  # by a version that left them readable to all
        if made_earlier.is_file() and made_earlier.stat().st_mode & 0o077:
            made_earlier.chmod(0o600)
    try:
        fd = os.open(data_dir / SECRET_KEY_FILE, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return
    with os.fdopen(fd, "w") as f:
        f.write(secrets.token_urlsafe(50))


def secret_key(data_dir: Path) -> str:
    """The data folder's secret key; one for this process alone where ``prepare`` has not run."""
    try:
        return (data_dir / SECRET_KEY_FILE).read_text().strip()
    except OSError:
        return secrets.token_urlsafe(50)
