"""One locustfile per scenario; each names the users (and shape) it runs."""
