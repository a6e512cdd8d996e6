"""Server side: the metadata strategy, aggregation policies, round summaries."""
