"""Notifications sent out of the gateway: mail (``mail.py``)."""
