"""The settings: every ATLASSIAN_PROXY_* setting and TOML key, parsed and checked once at load.

`model` holds the `Settings` model, `tables` its TOML tables (`[[sites]]`, `[[clients]]`),
`values` the type of each value, and `loading` reads them all (`load_settings`).
"""
