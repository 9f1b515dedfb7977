"""Per-user quality metrics for ranked lists."""
