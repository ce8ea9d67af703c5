"""Organisation paths: each organisation is known by its path from the root, like /hn/hn-hadong/, so that a subtree
is every path that starts with its root's. No database here."""

from __future__ import annotations


def is_within(path: str, root_path: str) -> bool:
    return path.startswith(root_path)


def materialised_paths(parents: dict[str, str | None]) -> dict[str, str]:
    """{id: parent id} -> {id: "/root/.../id/"}; the caller has ruled out cycles."""
    paths: dict[str, str] = {}

    def path_of(org_id: str) -> str:
        if org_id not in paths:
            parent = parents[org_id]
            paths[org_id] = f"{path_of(parent) if parent else '/'}{org_id}/"
        return paths[org_id]

    for org_id in parents:
        path_of(org_id)
    return paths


__all__ = ["is_within", "materialised_paths"]
