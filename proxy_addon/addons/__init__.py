"""mitmproxy hook classes, one concern each; the root addon in `runtime.root` assembles them."""
