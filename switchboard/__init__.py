"""The switchboard: the one bus app that sends email, SMS and push for every other app."""
