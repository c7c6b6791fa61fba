"""The REST API's shared pieces: error bodies, permissions, pagination and the URL root."""
