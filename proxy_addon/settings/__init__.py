"""The settings model: every ATLASSIAN_PROXY_* setting and TOML key, parsed and checked once at load."""
