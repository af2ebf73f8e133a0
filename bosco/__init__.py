"""bosco: one pseudo-CDN and one publish step for the static assets of a multi-repo web application."""

__version__ = "0.1.0"
