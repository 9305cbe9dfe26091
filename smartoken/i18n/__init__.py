"""Languages: English (the source strings) and Simplified Chinese, for the console and the
API's error messages. ``locales`` picks one per request, ``catalog`` loads the translations,
``formats`` writes numbers, money and dates the locale's way, ``errors`` translates API errors.
"""
