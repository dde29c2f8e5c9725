"""The dashboard: static files served at `/` by the API's own app, with no build step."""
