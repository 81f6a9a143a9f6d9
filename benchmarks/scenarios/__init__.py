"""One module per scenario; each registers itself with ``@scenario`` (see ``registry``)."""
