"""The HTTP API (`anomstream serve`): sync detection, file jobs, training and the model registry.

Deliberately empty: the job processes (`anomstream.api.work`) import this package and must not
pay for FastAPI; the app lives in `anomstream.api.app`.
"""
