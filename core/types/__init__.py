"""One module per Stripe object type: its mapping, status tables, lifecycle rank and `SPEC` (`core.registry`)."""
