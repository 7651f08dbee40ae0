"""The path of an event: envelope, publish, match, drive, ride, and the apps' declarations."""
