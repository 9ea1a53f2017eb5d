"""`channelsync serve`: a shared tenant over a REST API (see docs/rest-api.md)."""
