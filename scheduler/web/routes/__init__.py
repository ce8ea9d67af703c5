"""The routes, one module per resource; each has an `api` router (under /api/v1, or the players' own paths) and a
`pages` router (the staff's server-rendered pages), which scheduler/app.py includes in one loop."""
