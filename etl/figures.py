"""Marts turned into the documents every consumer shows (filled in by the figures work)."""
