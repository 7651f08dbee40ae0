"""The logger: a bus app that subscribes to every event and writes it where people search it.

Events land first in a capped Redis stream (the live feed and the durable buffer);
shippers read that stream with consumer groups and write JSON-lines files or
Elasticsearch/OpenSearch ``_bulk`` batches, acknowledging only what was written.
"""

from bus.logger.app import LoggerApp
from bus.logger.settings import LoggerSettings, load_logger_settings

__all__ = ["LoggerApp", "LoggerSettings", "load_logger_settings"]
