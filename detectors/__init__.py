"""anomstream's pure scoring library: no Kafka, no Faust, no TensorFlow.

The data flow it implements: per-source state -> detectors (one time step across many series at
once) -> calibration to [0, 1] -> fusion into a record score -> score message and events.
The stream (`streams/`) and offline scoring share it, so both give the same scores.
"""
