"""Redaction of secrets and personal data before text leaves rca or enters an index or a log.

Every occurrence is replaced by a placeholder that is consistent within one table
(`SECRET_1`, `EMAIL_2`, ...), so "the same token appears in the alert and in the log" survives
redaction. Detection is layered:

1. explicit patterns for well-known credential formats, key-value secrets, authorization
   headers, credentials in URLs and connection strings, private-key blocks, and secrets named
   in plain language ("the db password is hunter2", "pw Tr1cky#1");
2. detect-secrets' keyword and high-entropy detectors, with filters against their ad-hoc
   false positives (ordinary words);
3. personal data: e-mail addresses, phone numbers, payment card numbers (Luhn-checked), and IP
   addresses when asked for.

Every detector but the plain-language one also runs over the text with line breaks removed, so
a secret wrapped across lines is found too. Any failure raises `RedactionFailed`: callers must
then send nothing.
"""

from rca.redaction.records import redact_incident, redact_postmortem
from rca.redaction.text import CUT_MARK, PlaceholderTable, RedactionFailed, Redactor

__all__ = [
    "CUT_MARK",
    "PlaceholderTable",
    "RedactionFailed",
    "Redactor",
    "redact_incident",
    "redact_postmortem",
]
