"""A tiny OpenID Connect provider (django-oidc-provider) run in its own process by tests/peers/oidc.py."""
