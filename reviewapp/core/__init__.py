"""Cross-cutting pages: the staff home page, health, error pages."""
