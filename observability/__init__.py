"""Metrics, logs and traces shared by the API, the dataflows and the push server."""
