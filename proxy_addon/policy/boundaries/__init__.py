"""Jira-project and Confluence-space boundaries of bounded clients (see `judge`)."""
