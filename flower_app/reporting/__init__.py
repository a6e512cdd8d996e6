"""Reading a run back: report, plots and the `flower-meta` command."""
