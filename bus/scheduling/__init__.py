"""Time: the scheduler that delivers delayed events, and the once-a-minute heartbeat event."""
