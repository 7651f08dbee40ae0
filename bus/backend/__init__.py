"""The Redis side: connections and retries, the server clock, replica waits, the embedded server."""
