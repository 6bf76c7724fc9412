"""End-to-end scenarios over real HTTP (a package, so their module names may repeat the unit tests')."""
