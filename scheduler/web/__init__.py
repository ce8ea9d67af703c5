"""The central service's web layer: routes, their dependencies (the database session, the signed-in user, CSRF),
problem+json and the one mapping of the domain's errors to HTTP, pagination, the UI's words, templates and static
files. The domain packages (campaigns/, media/) import nothing from here, nor from FastAPI."""
