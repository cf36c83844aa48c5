"""Timestamp authorities as controls, and their admin page (audit.timestamps stamps the seals)."""
