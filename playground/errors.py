"""The error a workspace raises when it cannot take an action now."""


class WorkspaceError(ValueError):
    """An action this workspace cannot take now; the message says why and what to do."""
