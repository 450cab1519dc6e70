// Train module.
