# (module not built yet)
