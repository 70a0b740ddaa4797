"""Version of the package, in one place that every module may import."""

#: Version of the installed package.
__version__ = "0.1.0"
