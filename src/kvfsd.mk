# (daemon not built yet)
