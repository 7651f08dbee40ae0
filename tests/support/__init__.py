"""What the tests share: servers, topologies, the CLI runner and the provider emulators."""
