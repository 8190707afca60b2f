"""browse: event lists, event pages and seat maps over REST (the cached read path)."""

from groundwork_loadtest.users import BrowserUser

__all__ = ["BrowserUser"]
