"""Testing kit (placeholder in this branch: replaced by the real package at merge)."""
