"""The web console and playground, served by the gateway under ``/console``."""
