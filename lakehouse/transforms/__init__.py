"""Pure ``DataFrame -> DataFrame`` transforms of each layer, apart from any I/O."""
