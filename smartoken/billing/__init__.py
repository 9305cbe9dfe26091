"""Selling access: redemption codes and monthly statements (issue 15)."""
