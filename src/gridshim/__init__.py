"""gridshim: the Grid Engine commands (jsub, qstat, crontab, ...) on Kubernetes, with the user's own certificate."""

__version__ = "0.1.0"
