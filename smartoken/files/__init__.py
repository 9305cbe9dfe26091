"""The Files API: blob storage, text extraction, metadata queries and chat expansion."""
