"""One owner per Redis structure: subscriptions, queues, failures, delayed events, traces, metrics."""
