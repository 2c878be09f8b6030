"""Helpers the tests share: stand-ins, clients and the proxy runner. Tests import from here, never from each other."""
