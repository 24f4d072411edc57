"""The README must keep describing what the code reads (docs that drift are bugs)."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()


def test_every_environment_variable_the_code_reads_is_in_the_readme():
    code = "\n".join(p.read_text() for p in (ROOT / "whyops_local").rglob("*.py"))
    names = set(re.findall(r"environ(?:\.get)?[\(\[]\s*[\"']([A-Z_]+)[\"']", code)) - {"DJANGO_SETTINGS_MODULE", "RUN_MAIN"}
    assert names, "found no environment variables: the pattern is stale"
    missing = sorted(name for name in names if f"`{name}`" not in README)
    assert not missing, f"README.md does not describe {missing}"


def test_ci_runs_the_readme_test_command():
    assert "<!-- test-command -->" in README and "<!-- run-command -->" in README
    assert "test-command" in (ROOT / ".ci" / "run").read_text()
