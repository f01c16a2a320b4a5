"""The protection service: Flask app, Keystone auth, peer sync, operations, Mistral launcher."""
