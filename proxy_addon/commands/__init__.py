"""Operator commands: `atlassian-auth-proxy run/login/logout/check/env/health/demo`."""
