"""One model of a run's outcomes: stage, round, node; accepted, rejected, failed.

The strategy fills it live, record by record, as it writes the metadata
log; reading a run folder fills it by replaying that log through the same
`Outcomes.add`, so a run's live and replayed outcomes are one value.
Stragglers, warm-ups, per-round statistics and the run's summary line are
computed here, once, with one set of defaults; the round log, the terminal
tables, report.html, MLflow and TensorBoard only render them.
"""
