"""The human-validity study of §4: web app, scoring, VLM rater and quiz."""
