// Loss module.
