"""The running proxy: the root addon that wires the hook classes to the settings, and the server that runs mitmproxy."""
