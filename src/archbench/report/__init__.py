"""Report stage: collect run metrics into tables (collect), aggregate over seeds and compare (compare), plots, summary.md."""
