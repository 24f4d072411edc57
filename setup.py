"""The wheel carries the top-level templates/ and static/ as the package's data (whyops_local/templates,
whyops_local/static), where the settings find them when there is no checkout; pyproject.toml has the rest.

Each of their folders is listed as a (namespace) package of data, which is how setuptools ships folders
of files that are not Python."""

from setuptools import find_namespace_packages, find_packages, setup

FOLDERS = ("templates", "static")
data = [f"whyops_local.{folder}" for folder in FOLDERS]
data += [f"whyops_local.{folder}.{sub}" for folder in FOLDERS for sub in find_namespace_packages(folder)]

setup(
    packages=[*find_packages(include=["whyops_local", "whyops_local.*"]), *data],
    package_dir={f"whyops_local.{folder}": folder for folder in FOLDERS},
    package_data={package: ["*"] for package in data},
)
