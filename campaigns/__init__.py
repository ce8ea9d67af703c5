"""What staff define: organisations, sites, screens, peak profiles, campaigns, overrides and users."""
