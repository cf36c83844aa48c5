"""Admin pages for evidence exports (being written in issue 5)."""
