"""Low-balance and key-budget alerts (issue 15): settings and history (``store``), the
signed webhook (``signing``, ``deliver``), and the background watcher (``watcher``) that checks
the accounts and keys a ledger batch moved, claims each alert once, and delivers it."""
