"""Routers of the study app: rater pages, admin pages, public quiz."""
