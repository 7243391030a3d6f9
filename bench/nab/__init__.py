"""NAB (Numenta Anomaly Benchmark) support: our own scorer, written from the published algorithm."""
