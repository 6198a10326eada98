"""Applications layer: the `pvflow` command line. Imports anything below it, nothing imports it."""
