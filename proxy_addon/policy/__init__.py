"""Pure decision and policy code: no mitmproxy, no I/O; everything the hooks decide is decided here."""
