"""What the tests share: servers, topologies, the CLI runner, the provider emulators, and
``polling.wait_for``, the one way a test waits for another thread or process."""
