"""Both sites' status and the failover of a whole site, for DR administrators."""
