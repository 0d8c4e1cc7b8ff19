"""Reports people look at (report.html)."""
