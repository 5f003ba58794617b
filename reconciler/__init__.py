"""reconciler: declarative, git-versioned integration settings for a class-scheduling platform."""

__version__ = "0.2.0"
