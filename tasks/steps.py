"""Import every module that registers CLI subcommands (keeps ``tasks.cli`` import-light)."""

from tasks import cli  # noqa: F401  (the built-in subcommands live there)
