"""The web UI's static files, installed as the package data of ``scheduler_webapp``.

A regular package (this file) rather than a namespace one: importlib.resources then
finds exactly this directory, and a same-named directory without code elsewhere on
``sys.path`` (a working directory) cannot add files to it. See pyproject.toml
([tool.setuptools.package-data]); src/scheduler_webapp links here.
"""
