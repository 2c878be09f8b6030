"""The addon mitmproxy loads: `atlassian-auth-proxy run` uses it, and so can
`mitmdump -s proxy_addon/addon.py`, configured by the same ATLASSIAN_PROXY_* settings.
"""

from proxy_addon.runtime.root import AtlassianAuthProxy

addons = [AtlassianAuthProxy()]
